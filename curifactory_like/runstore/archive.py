"""``experiment export`` / ``experiment import``: a run folder as one ``.tar.gz``.

The archive holds one top-level folder named after the run reference. Importing checks every
member before anything is extracted: absolute paths, ``..`` components, links leaving the
run folder, devices and members outside the single top-level folder are refused (the whole
archive is, with the member named). The extracted folder must match its manifest before it is
moved into the runs folder, registered, and its report copied to the reports folder.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from typing import Any

from ..errors import ArchiveError
from . import layout
from .reproduce import resolve_run_folder


def export_run(target: str, destination: str) -> tuple[str, str]:
    """Write the run folder ``target`` names (reference or path) to ``destination``.

    Returns the reference and the archive path. The folder is verified against its manifest
    first, so a damaged run is never exported silently.
    """
    from .. import utils

    config = utils.get_configuration()
    folder = resolve_run_folder(target, str(config["runs_path"]))
    manifest = layout.read_manifest(folder)
    layout.verify_files(folder, manifest)
    reference = str(manifest["reference"])
    directory = os.path.dirname(os.path.abspath(destination))
    if not os.path.isdir(directory):
        raise ArchiveError(f"cannot write {destination}: folder {directory} does not exist")
    partial = f"{destination}.partial"
    try:
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(folder, arcname=reference)
        os.replace(partial, destination)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return reference, destination


def check_members(members: list[tarfile.TarInfo], source: str) -> str:
    """The single top-level folder of the archive; ArchiveError for any unsafe member."""
    tops: set[str] = set()
    for member in members:
        name = member.name
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if name.startswith(("/", "\\")) or os.path.isabs(name) or (len(name) > 1 and name[1] == ":"):
            _refuse(source, name, "has an absolute path")
        if ".." in parts:
            _refuse(source, name, "contains '..'")
        if not parts:
            continue
        tops.add(parts[0])
        if member.issym() or member.islnk():
            link = member.linkname.replace("\\", "/")
            if posixpath.isabs(link):
                _refuse(source, name, f"is a link to the absolute path {member.linkname!r}")
            base = posixpath.dirname("/".join(parts)) if member.issym() else ""
            resolved = posixpath.normpath(posixpath.join(base, link))
            if resolved == ".." or resolved.startswith("../") or resolved.split("/")[0] != parts[0]:
                _refuse(source, name, f"is a link pointing outside the run folder ({member.linkname!r})")
        elif not (member.isfile() or member.isdir()):
            _refuse(source, name, "is a device, FIFO or other special file")
    if len(tops) != 1:
        raise ArchiveError(
            f"{source} is not a run archive: it should hold one run folder, it holds "
            f"{len(tops)} top-level entries ({', '.join(sorted(tops)[:5])})",
            hint="make run archives with `experiment export REF FILE.tar.gz`",
        )
    return tops.pop()


def _refuse(source: str, name: str, why: str) -> None:
    raise ArchiveError(
        f"refusing to import {source}: member {name!r} {why}; nothing was extracted",
        hint="the archive is damaged or was not made by `experiment export`; do not extract it "
        "by hand",
    )


def _extract(source: str, scratch: str) -> str:
    """Check every member, then extract the archive into ``scratch``; its top-level folder."""
    try:
        with tarfile.open(source, "r:*") as archive:
            members = archive.getmembers()
            top = check_members(members, source)
            if hasattr(tarfile, "data_filter"):
                archive.extractall(scratch, members=members, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                archive.extractall(scratch, members=members)
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(
            f"{source} is not a tar archive, or cannot be extracted ({exc})",
            hint="make run archives with `experiment export REF FILE.tar.gz`",
        ) from exc
    return top


def import_run(source: str) -> dict[str, Any]:
    """Import the run archive ``source``; return the registered run row.

    The run folder lands in the runs folder, its registry row in the registry (so it shows in
    ``experiment runs``), its report in the reports folder and the reports index.
    """
    from .. import utils
    from ..errors import RunAlreadyRegisteredError, RunStoreError
    from ..reporting.report_index import update_report_index
    from ..store import RunStore

    config = utils.get_configuration()
    runs_path = str(config["runs_path"])
    if not os.path.isfile(source):
        raise ArchiveError(f"no such archive: {source}")
    os.makedirs(runs_path, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".import-", dir=runs_path)
    try:
        folder = os.path.join(scratch, _extract(source, scratch))
        manifest = layout.read_manifest(folder)
        layout.verify_files(folder, manifest)
        run = layout.read_json(folder, layout.RUN_INFO_NAME)
        run.pop("manifest", None)
        reference = str(manifest["reference"])
        target = os.path.join(runs_path, reference)
        if os.path.exists(target):
            raise ArchiveError(
                f"run {reference} is already here ({target}); nothing was imported",
                hint=f"remove {target} first to replace it",
            )
        run.update(imported_from=os.path.abspath(source), full_store=True)
        try:
            with RunStore(str(config["manager_cache_path"])) as store:
                row = store.import_run(run)
        except RunAlreadyRegisteredError as exc:
            raise ArchiveError(
                f"{exc}; nothing was imported",
                hint=f"this project's registry already has a run named {reference} (its run"
                " folder is not here: a plain run made in the same second, or an earlier"
                " import whose folder was removed); `experiment runs` lists it",
            ) from exc
        except RunStoreError as exc:
            raise ArchiveError(f"{exc}; nothing was imported") from exc
        os.replace(folder, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    reports_path = str(config["reports_path"])
    report = os.path.join(target, "report")
    if os.path.isdir(report):
        destination = os.path.join(reports_path, reference)
        if not os.path.exists(destination):
            shutil.copytree(report, destination)
    update_report_index(reports_path, str(config["manager_cache_path"]))
    return row
