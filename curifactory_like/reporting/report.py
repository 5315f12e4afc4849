"""The run report: ``reports/<reference>/index.html`` and everything next to it.

:func:`render_run_report` is what ``ArtifactManager.generate_report()`` calls after every run
(also a failed one, also one that failed while mapping). It writes, into
``<reports_path>/<reference>/``:

* ``index.html``: the info block, a table of contents, the reportables (by group, then in
  order), the stage graph (one ``dot`` call for the whole run, a summary graph for very large
  runs), per-record stage detail and the parameter sets;
* ``records.html`` instead of the inline per-record detail when the run has more than
  :data:`INLINE_DETAIL_MAX_CALLS` stage calls (``index.html`` then keeps a per-stage summary);
* ``reportables/`` (files the reportables render), ``graphs/dag.gv`` (the DOT source),
  ``log.txt`` (a copy of the run's log), ``run_info.json``, ``report.css`` (the package's
  layout) and ``style.css`` (``report_css_path`` when it exists, else the package's theme);

then points ``<reports_path>/_latest`` at it (a symlink, a copy where links are impossible) and,
for ``--store-full`` runs, copies the folder into the run's own folder as ``report/``.

Every page comes from the jinja2 templates in ``templates/report/`` with autoescaping on; no
HTML is put together in Python. The runs index and the report server live in
``report_index`` and ``serve`` and are re-exported here.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Iterable
from typing import Any

from markupsafe import Markup

from curifactory_like import faults
from curifactory_like.caching import atomic_open
from curifactory_like.reporting.dag_graph import STATE_STYLES, render_svg, stage_graph_source
from curifactory_like.reporting.graph_prefetch import take_prefetched
from curifactory_like.reporting.plan_section import plan_context
from curifactory_like.reporting.render import RECORD_COLORS, prepare_report_path, render_reportable
from curifactory_like.reporting.report_index import update_report_index
from curifactory_like.reporting.run_view import CallState, build_run_view
from curifactory_like.reporting.serve import serve_reports
from curifactory_like.reporting.templating import report_environment, write_page

__all__ = [
    "INLINE_DETAIL_MAX_CALLS",
    "render_report_argset_dump",
    "render_run_report",
    "run_report",
    "serve_reports",
    "update_report_index",
]

logger = logging.getLogger(__name__)

INLINE_DETAIL_MAX_CALLS = 1000
"""Stage calls up to which the per-record detail is part of ``index.html``; above, it is
written to ``records.html`` so ``index.html`` stays small."""

INFO_MAX_PARAM_SETS = 50
"""Parameter sets up to which the info block lists each one; above, it gives counts per file
(the parameter sets section lists them all)."""

GIT_DIFF_SHOWN_CHARS = 20_000
"""How much of the uncommitted ``git diff`` the info block shows."""

GIT_UNTRACKED_SHOWN = 200
"""Untracked files the info block lists (all of them are in the run registry)."""

_STATUS_CLASSES = {"complete": "ok", "error": "error", "incomplete": "warn", "LIVE": "live"}


# ---------------------------------------------------------------------- public functions


def render_run_report(manager: Any) -> str:
    """Write the report of ``manager``'s run and return the path of its ``index.html``.

    Also updates ``<reports_path>/_latest`` and, for a ``store_full`` run, the copy in the run
    folder. Works for complete, failed and live runs, with or without a stage DAG, and without
    graphviz (the report then says why the graph is missing).
    """
    started = time.perf_counter()
    reference = manager.get_reference_name()
    faults.checkpoint("report.run")
    folder, _, _ = run_report(
        manager, str(manager.reports_path), reference, getattr(manager, "report_css_path", None)
    )
    faults.checkpoint("report.latest")
    _point_latest(str(manager.reports_path), reference, folder)
    if getattr(manager, "store_full", False):
        stored = manager.get_run_output_path("report")
        shutil.copytree(folder, stored, dirs_exist_ok=True)
    logger.info("Report written to %s in %.2f s", folder, time.perf_counter() - started)
    return os.path.join(folder, "index.html")


def run_report(
    manager: Any, output_path: str, name: str, css_path: str | None = None
) -> tuple[str, str, str]:
    """Write a report of ``manager`` into ``<output_path>/<name>/`` (curifactory's function).

    Unlike :func:`render_run_report` it leaves ``_latest`` and the store-full copy alone.

    Returns:
        The report folder, its ``graphs`` folder and its ``reportables`` folder.
    """
    folder, graphs_path, reportables_path = prepare_report_path(output_path, name)
    view = build_run_view(manager)
    source, summarised = stage_graph_source(view)
    with atomic_open(os.path.join(graphs_path, "dag.gv"), "w", encoding="utf-8") as outfile:
        outfile.write(source)
    prefetch, manager.graph_prefetch = getattr(manager, "graph_prefetch", None), None
    graph = take_prefetched(prefetch, source, summarised) or render_svg(source, summarised)
    has_log = _copy_log(manager, folder)
    inline_detail = view.call_count <= INLINE_DETAIL_MAX_CALLS
    groups = _render_reportables(manager, reportables_path)
    context = {
        "info": _info(manager, has_log),
        "groups": groups,
        "reportable_count": sum(len(group["items"]) for group in groups),
        "view": view,
        "graph": graph,
        "svg": Markup(graph.svg) if graph.svg else None,
        "legend": [(state, STATE_STYLES[state]) for state in CallState],
        "totals": view.totals(),
        "stage_summary": view.stage_summary(),
        "inline_detail": inline_detail,
        "param_groups": _param_groups(view.param_sets),
        "record_colors": RECORD_COLORS,
        "plan": plan_context(manager),
        "reproduction": getattr(manager, "reproduction", None),
    }
    write_page(os.path.join(folder, "index.html"), "run.html", **context)
    records_page = os.path.join(folder, "records.html")
    if not inline_detail:
        write_page(records_page, "records.html", **context)
    elif os.path.exists(records_page):
        os.remove(records_page)
    _copy_styles(folder, css_path)
    run_info = getattr(manager, "run_info", None)
    if run_info is not None:
        with atomic_open(os.path.join(folder, "run_info.json"), "w", encoding="utf-8") as out:
            json.dump(run_info, out, indent=4, default=str)
    return folder, graphs_path, reportables_path


def render_report_argset_dump(manager: Any) -> list[str]:
    """The parameter sets of ``manager``'s records as HTML lines (curifactory's layout).

    Per parameter set: a ``<h4>`` with name and hash, ``<pre>``, the escaped JSON of its hash
    representation, ``</pre>``.
    """
    from curifactory_like import hashing

    macros = report_environment().get_template("report/argset.html").module
    lines: list[str] = []
    for param_set in manager.get_all_param_sets():
        representation = hashing.param_set_string_hash_representations(param_set)
        text = json.dumps(representation, indent=2, default=str)
        lines.append(str(macros.heading(param_set.name, param_set.hash)))  # type: ignore[attr-defined]
        lines.append(str(macros.pre_open()))  # type: ignore[attr-defined]
        lines.append(str(macros.text(text)))  # type: ignore[attr-defined]
        lines.append(str(macros.pre_close()))  # type: ignore[attr-defined]
    return lines


# ---------------------------------------------------------------------- the page's parts


def _info(manager: Any, has_log: bool) -> dict[str, Any]:
    """The values of the info block."""
    git = getattr(manager, "git_info", None)
    run_info = getattr(manager, "run_info", None) or {}
    started = manager.run_timestamp
    ended = getattr(manager, "run_end_timestamp", None)
    diff = str(getattr(git, "diff", "") or "")
    untracked = tuple(getattr(git, "untracked", ()) or ())
    status = str(manager.status)
    error_exception = getattr(manager, "error_exception", None)
    param_file_sets = dict(getattr(manager, "param_file_param_sets", None) or {})
    in_files = {h for sets in param_file_sets.values() for _, h in sets}
    live_sets = [(p.name, p.hash) for p in _param_sets_of(manager) if p.hash not in in_files]
    commit = getattr(git, "commit", None) or getattr(manager, "git_commit_hash", "") or ""
    return {
        "experiment": manager.experiment_name,
        "run_number": manager.experiment_run_number,
        "reference": manager.get_reference_name(),
        "started": started.strftime("%Y-%m-%d %H:%M:%S"),
        "ended": ended.strftime("%Y-%m-%d %H:%M:%S") if ended else None,
        "duration": (ended - started).total_seconds() if ended else None,
        "status": status,
        "status_class": _STATUS_CLASSES.get(status, "warn"),
        "error": getattr(manager, "error", None),
        "traceback": (
            "".join(traceback.format_exception(error_exception)) if error_exception else None
        ),
        "interactive": bool(getattr(manager, "interactive", False)),
        "hostname": getattr(manager, "hostname", ""),
        "user": run_info.get("user"),
        "python": run_info.get("python"),
        "platform": run_info.get("platform"),
        "commit": commit or "no git repository found",
        "has_commit": bool(getattr(git, "commit", None)),
        "dirty": bool(getattr(manager, "git_workdir_dirty", False)),
        "branch": getattr(git, "branch", None),
        "untracked": list(untracked[:GIT_UNTRACKED_SHOWN]),
        "untracked_count": len(untracked),
        "diff": diff[:GIT_DIFF_SHOWN_CHARS],
        "diff_cut": len(diff) > GIT_DIFF_SHOWN_CHARS,
        "param_files": list(getattr(manager, "parameter_files", None) or []),
        "param_file_sets": param_file_sets,
        "live_sets": live_sets,
        "list_param_sets": len(in_files) + len(live_sets) <= INFO_MAX_PARAM_SETS,
        "run_line": getattr(manager, "run_line", ""),
        "reproduction_line": getattr(manager, "reproduction_line", ""),
        "reproduce_command": getattr(manager, "reproduce_command", ""),
        "store_full": bool(getattr(manager, "store_full", False)),
        "notes": getattr(manager, "notes", None) or "",
        "has_log": has_log,
        "cache_path": getattr(manager, "cache_path", ""),
    }


def _param_sets_of(manager: Any) -> Iterable[Any]:
    seen: set[str] = set()
    dag = getattr(manager, "dag", None)
    records = list(getattr(dag, "records", None) or []) + list(manager.records)
    for record in records:
        params = getattr(record, "params", None)
        if params is not None and params.hash not in seen:
            seen.add(params.hash)
            yield params


def _render_reportables(manager: Any, reportables_path: str) -> list[dict[str, Any]]:
    """Render every reportable; groups first (first-seen order), then the ungrouped ones."""
    groups: list[dict[str, Any]] = [
        {"name": name, "items": members}
        for name, members in manager.get_grouped_reportables().items()
    ]
    ungrouped = manager.get_ungrouped_reportables()
    if ungrouped:
        groups.append({"name": None, "items": ungrouped})
    for group in groups:
        group["items"] = [_render_one(r, manager, reportables_path) for r in group["items"]]
    return groups


def _render_one(reportable: Any, manager: Any, reportables_path: str) -> dict[str, Any]:
    name = str(reportable.qualified_name or reportable.name or type(reportable).__name__)
    try:
        lines = render_reportable(reportable, manager, reportables_path)
    except Exception as exc:  # one broken reportable must not cost the whole report
        logger.error("Reportable %r could not be rendered: %s: %s", name, type(exc).__name__, exc)
        return {"name": name, "html": None, "error": f"{type(exc).__name__}: {exc}"}
    # the fragment is HTML by contract: built-ins escape their content, HTMLReporter is trusted
    return {"name": name, "html": Markup("".join(str(line) for line in lines)), "error": None}


def _param_groups(param_sets: list[Any]) -> list[dict[str, Any]]:
    """Parameter sets as tables: one per set of fields, constant fields listed once."""
    from curifactory_like import hashing

    grouped: dict[tuple[str, ...], list[tuple[Any, dict[str, str]]]] = {}
    for param_set in param_sets:
        try:
            representation = hashing.param_set_string_hash_representations(param_set)
        except Exception as exc:  # a parameter the report cannot show must not stop it
            representation = {"(not shown)": f"{type(exc).__name__}: {exc}"}
        values = dict(_flatten({k: v for k, v in representation.items() if k != "name"}))
        grouped.setdefault(tuple(values), []).append((param_set, values))
    groups = []
    for columns, members in grouped.items():
        shared: list[tuple[str, str]] = []
        varying = list(columns)
        if len(members) > 1:
            shared = [
                (c, members[0][1][c])
                for c in columns
                if all(values[c] == members[0][1][c] for _, values in members)
            ]
            varying = [c for c in columns if c not in dict(shared)]
        groups.append(
            {
                "type": type(members[0][0]).__name__,
                "shared": shared,
                "columns": varying,
                "rows": [
                    {"name": p.name, "hash": p.hash, "values": [values[c] for c in varying]}
                    for p, values in members
                ],
            }
        )
    return groups


def _flatten(values: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, str]]:
    for key, value in values.items():
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield (
                f"{prefix}{key}",
                value if isinstance(value, str) else json.dumps(value, default=str),
            )


# ---------------------------------------------------------------------- files


def _copy_log(manager: Any, folder: str) -> bool:
    """Copy the run's log into the report as ``log.txt``; whether there was one."""
    candidates = [
        getattr(manager, "log_path", None),
        os.path.join(str(manager.logs_path), f"{manager.get_reference_name()}.log"),
    ]
    for path in candidates:
        if path and os.path.isfile(path):
            shutil.copyfile(path, os.path.join(folder, "log.txt"))
            return True
    return False


def _package_file(name: str) -> Any:
    return importlib.resources.files("curifactory_like") / "templates" / "report" / name


def _copy_styles(folder: str, css_path: str | None) -> None:
    """``report.css`` (layout, always the package's) and ``style.css`` (the project's theme)."""
    with importlib.resources.as_file(_package_file("report.css")) as layout:
        shutil.copyfile(layout, os.path.join(folder, "report.css"))
    if css_path and os.path.isfile(css_path):
        shutil.copyfile(css_path, os.path.join(folder, "style.css"))
        return
    if css_path:
        logger.info("Report CSS file %s not found; using curifactory_like's style.css", css_path)
    with importlib.resources.as_file(_package_file("style.css")) as theme:
        shutil.copyfile(theme, os.path.join(folder, "style.css"))


def _point_latest(reports_path: str, reference: str, folder: str) -> None:
    """Make ``<reports_path>/_latest`` the report just written (symlink, else a copy)."""
    latest = os.path.join(reports_path, "_latest")
    temporary = f"{latest}.{os.getpid()}.tmp"
    try:
        if os.path.lexists(temporary):
            os.remove(temporary)
        os.symlink(reference, temporary, target_is_directory=True)
        if os.path.isdir(latest) and not os.path.islink(latest):
            shutil.rmtree(latest)
        os.replace(temporary, latest)
        return
    except OSError as exc:
        logger.debug("Cannot link %s (%s); copying the report instead", latest, exc)
        if os.path.lexists(temporary):
            os.remove(temporary)
    if os.path.islink(latest) or os.path.isfile(latest):
        os.remove(latest)
    elif os.path.isdir(latest):
        shutil.rmtree(latest)
    shutil.copytree(folder, latest)
