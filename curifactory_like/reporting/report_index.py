"""``reports/index.html``: every run of the project, newest first, read from the run registry.

The page is rebuilt from one registry query (``RunStore.list_runs``) and one directory listing of
the reports folder; old reports are never opened, so updating it after each run stays cheap
however many runs there are. Report folders without a registry entry (copied in from elsewhere,
or from before the registry) are listed at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import json
import logging
import os
import shutil
from collections.abc import Iterator
from typing import Any

from curifactory_like import faults
from curifactory_like.caching import atomic_open
from curifactory_like.caching.atomic import atomic_path
from curifactory_like.reporting.templating import render_page

__all__ = ["update_report_index"]

logger = logging.getLogger(__name__)

_STATUS_CLASSES = {"complete": "ok", "error": "error", "incomplete": "warn", "LIVE": "live"}


def _first_line(text: Any) -> str:
    return str(text or "").strip().split("\n", 1)[0]


def _run_row(run: dict[str, Any], folders: set[str], reports_path: str) -> dict[str, Any]:
    reference = str(run.get("reference", ""))
    has_report = reference in folders and os.path.isfile(
        os.path.join(reports_path, reference, "index.html")
    )
    status = str(run.get("status", ""))
    return {
        "reference": reference,
        "experiment": run.get("experiment_name", ""),
        "run_number": run.get("run_number", ""),
        "timestamp": str(run.get("timestamp", "")),
        "has_report": has_report,
        "status": status,
        "status_class": _STATUS_CLASSES.get(status, "warn"),
        "error": _first_line(run.get("error")) if status == "error" else "",
        "dirty": bool(run.get("workdir_dirty")),
        "commit": str(run.get("commit") or "")[:10],
        "hostname": run.get("hostname") or "",
        "notes": _first_line(run.get("notes")),
        "cli": run.get("cli") or "",
        "full_store": bool(run.get("full_store")),
    }


def update_report_index(
    reports_path: str,
    manager_cache_path: str,
    pending: dict[str, dict[str, Any]] | None = None,
    only_if_changed: bool = False,
) -> str:
    """Rewrite ``<reports_path>/index.html`` from the registry; return its path.

    ``pending`` maps run references to run-info fields not yet in the registry (the final
    status of the run being finished), which replace the registry's values for those runs.
    Reading the registry and writing the page happen under an exclusive lock on
    ``<reports_path>/.index.lock``, so of two runs finishing at once the later writer's page
    includes both. ``only_if_changed`` skips the write when the page already shows the same
    rows (its digest is kept in ``.index.digest``; used by the refresh after a run's final
    status, see ``run_ending.finish_run``).
    """
    os.makedirs(reports_path, exist_ok=True)
    faults.checkpoint("report.index")
    with index_lock(reports_path):
        return _write_index(reports_path, manager_cache_path, pending or {}, only_if_changed)


@contextlib.contextmanager
def index_lock(reports_path: str) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``<reports_path>/.index.lock`` (none without fcntl)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, last writer wins
        yield
        return
    with open(os.path.join(reports_path, ".index.lock"), "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


DIGEST_FILE = ".index.digest"
"""Beside index.html: a digest of the rows it shows, written with it under the index lock."""


def _written_digest(reports_path: str) -> str | None:
    try:
        with open(os.path.join(reports_path, DIGEST_FILE), encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _write_index(
    reports_path: str,
    manager_cache_path: str,
    pending: dict[str, dict[str, Any]],
    only_if_changed: bool,
) -> str:
    from curifactory_like.store import RunStore

    with RunStore(manager_cache_path) as store:
        runs = store.list_runs()
    if pending:
        runs = [{**run, **pending.get(str(run.get("reference")), {})} for run in runs]
    with os.scandir(reports_path) as entries:
        folders = {e.name for e in entries if e.is_dir() and not e.name.startswith("_")}
    # newest first: by start time, then by registration order (runs started in the same second)
    order = sorted(
        range(len(runs)), key=lambda i: (str(runs[i].get("timestamp", "")), i), reverse=True
    )
    runs = [runs[i] for i in order]
    rows = [_run_row(run, folders, reports_path) for run in runs]
    registered = {row["reference"] for row in rows}
    unregistered = sorted(
        name
        for name in folders - registered
        if os.path.isfile(os.path.join(reports_path, name, "index.html"))
    )
    path = os.path.join(reports_path, "index.html")
    digest = hashlib.sha256(json.dumps([rows, unregistered], default=str).encode()).hexdigest()
    if only_if_changed and _written_digest(reports_path) == digest and os.path.isfile(path):
        return path
    experiments: dict[str, int] = {}
    for row in rows:
        experiments[row["experiment"]] = experiments.get(row["experiment"], 0) + 1
    page = render_page(
        "runs_index.html",
        rows=rows,
        experiments=sorted(experiments.items()),
        unregistered=unregistered,
        has_latest=os.path.exists(os.path.join(reports_path, "_latest", "index.html")),
        has_theme=os.path.isfile(os.path.join(reports_path, "style.css")),
    )
    layout = importlib.resources.files("curifactory_like") / "templates" / "report" / "report.css"
    with importlib.resources.as_file(layout) as source, atomic_path(
        os.path.join(reports_path, "report.css")
    ) as temporary:
        shutil.copyfile(source, temporary)
    with atomic_open(path, "w", encoding="utf-8") as outfile:
        outfile.write(page)
    with atomic_open(os.path.join(reports_path, DIGEST_FILE), "w", encoding="utf-8") as handle:
        handle.write(digest)
    logger.info("Report index updated (%d runs): %s", len(rows), path)
    return path
