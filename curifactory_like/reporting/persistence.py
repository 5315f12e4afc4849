"""Keeping a stage's reportables with its cache, as rendered files plus data, never as pickles.

When a stage computes, every reportable it reported is rendered (``render_fragment``) into the
record's ``<prefix>_<hash>_<stage>_reportables/`` folder, a tracked path that a
``--store-full`` run copies, and described in a JSON manifest::

    <prefix>_<hash>_<stage>_reportables/
        manifest.json               written last and atomically: the commit point
        gen-<id>/                   one generation per computation of the stage
            00_<qualified name>/
                rendered/...        whatever render() wrote
                frame.parquet       data a built-in is rebuilt from (frame.csv, data.json,
                                    content.html, table.tex; images are the rendered file)

Each manifest entry holds ``kind``, ``class``, ``name``, ``group``, ``qualified_name``,
``stage``, ``folder`` and ``files`` (relative to the manifest), ``html`` (the fragment
``html()`` returned, with the rendered folder written as ``PATH_PLACEHOLDER``) and ``data``
(what a built-in kind is rebuilt from). Older generations are removed once the new manifest
is in place, so a reader sees either the old reportables or the new ones.

When the stage is later loaded or skipped, each entry is rebuilt and reported on the new
record: a built-in as its own class (``isinstance(r, DFReporter)`` holds and it renders as
before), which is only stored that way when the rebuilt reportable was checked to render the
same fragment; anything else (user-defined reportables, built-ins whose data does not survive
the round trip) as a ``CachedReportable`` serving the stored fragment and files. Problems are
``CurifactoryWarning``\\ s naming the reportable and the stage, never a failed run; so is a
stage whose reportables curifactory cached as pickles (its ``reportables_file_list``), which
are never loaded.

The manager calls these through ``store_reportables`` / ``restore_cached_reportables``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
import warnings
from typing import Any

from curifactory_like.caching import atomic_open
from curifactory_like.errors import CurifactoryWarning
from curifactory_like.reporting.builtin import DFReporter, FigureReporter, LinePlotReporter
from curifactory_like.reporting.render import PATH_PLACEHOLDER, render_fragment
from curifactory_like.reporting.reportable import Reportable
from curifactory_like.reporting.reportable_codecs import (
    _CODECS,
    _LAZY_LOADERS,
    _LOADERS,
    _RENDERED,
    _inside,
    _read_bytes,
)

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "CachedReportable",
    "load_stage_reportables",
    "save_stage_reportables",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
"""File name of the manifest inside a stage's reportables folder."""

MANIFEST_FORMAT = "curifactory_like.reportables/1"
"""Version tag of the manifest layout; a manifest with another tag is not read."""

FOLDER_SUFFIX = "reportables"
"""``record.get_dir`` suffix of a stage's reportables folder (curifactory's name)."""

LEGACY_LIST_NAME = "reportables_file_list"
"""Artifact name of curifactory's list of pickled reportables: read never, only noticed."""

_GENERATION_PREFIX = "gen-"
_CACHED_KIND = "CachedReportable"


class CachedReportable(Reportable):
    """A reportable rebuilt from a stage's cache that shows what its original showed.

    Reportables that are not built-ins (or whose data did not survive the round trip) come
    back as this class: ``render()`` copies the files the original rendered into ``path`` under
    their original names, and ``html()`` is the fragment the original returned for that
    ``path``. (An unnamed reportable renumbered in a later run keeps its original file names.)

    Args:
        fragment: The original's HTML fragment, with its rendered folder written as
            ``PATH_PLACEHOLDER``.
        files_folder: The folder holding what the original's ``render()`` wrote.
        original_class: ``module.QualifiedName`` of the original reportable's class.
        name: See ``Reportable``.
        group: See ``Reportable``.
    """

    def __init__(
        self,
        fragment: str,
        files_folder: str,
        original_class: str,
        name: str | None = None,
        group: str | None = None,
    ) -> None:
        self.fragment = fragment
        """The original's HTML fragment (with ``PATH_PLACEHOLDER``)."""
        self.files_folder = files_folder
        """Where the original's rendered files are kept in the cache."""
        self.original_class = original_class
        """``module.QualifiedName`` of the original reportable's class."""
        super().__init__(name=name, group=group)

    def render(self) -> None:
        if os.path.isdir(self.files_folder):
            shutil.copytree(self.files_folder, self.path, dirs_exist_ok=True)

    def html(self) -> str:
        return self.fragment.replace(PATH_PLACEHOLDER, str(self.path))

    def __repr__(self) -> str:
        name = self.qualified_name or self.name or "(unnamed)"
        return f"<CachedReportable {name!r} of {self.original_class}>"


# -- saving ------------------------------------------------------------------------------------


_JSON_SCALAR = (str, int, float, bool, type(None))

_ENTRY_FIELDS: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "class": str,
    "name": _JSON_SCALAR,
    "group": _JSON_SCALAR,
    "qualified_name": (str, type(None)),
    "stage": str,
    "folder": str,
    "files": list,
    "html": str,
    "data": dict,
}


def _check_entry(entry: Any) -> dict[str, Any]:
    """``entry`` if it is a well-formed manifest entry, else ``ValueError`` saying what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError("its manifest entry is not an object")
    for field, expected in _ENTRY_FIELDS.items():
        if not isinstance(entry.get(field), expected):
            types = expected if isinstance(expected, tuple) else (expected,)
            wanted = " or ".join(t.__name__ for t in types)
            raise ValueError(f"its manifest entry's {field!r} is not a {wanted}")
    return entry


def _describe(reportable: Reportable, stage_name: str) -> str:
    name = reportable.qualified_name or reportable.name or type(reportable).__name__
    return f"reportable {name!r} ({type(reportable).__name__}) of stage '{stage_name}'"


def _entry_folder_name(position: int, reportable: Reportable) -> str:
    return f"{position:02d}_{reportable._file_name('')[:80]}"


def _fragment_at_placeholder(reportable: Reportable) -> str:
    saved_path = reportable.path
    reportable.path = PATH_PLACEHOLDER
    try:
        fragment = reportable.html()
    finally:
        reportable.path = saved_path
    return "".join(fragment) if isinstance(fragment, list) else str(fragment)


def _store_data(reportable: Reportable, folder: str, fragment: str) -> tuple[str, dict[str, Any]]:
    """Write the data a built-in is rebuilt from; return its kind and manifest ``data``.

    A codec is used only if the reportable it rebuilds renders ``fragment`` again; otherwise
    (and for every other class) the kind is ``CachedReportable``, rebuilt from the fragment.
    """
    for codec in _CODECS.get(type(reportable), ()):
        before = set(os.listdir(folder))
        try:
            data = codec.dump(reportable, folder)
            rebuilt = codec.load(data, folder, reportable.name, reportable.group)
            rebuilt.qualified_name = reportable.qualified_name
            if _fragment_at_placeholder(rebuilt) == fragment:
                return codec.kind, data
            logger.debug(
                "%r does not render the same after %s; trying the next way",
                reportable,
                codec.dump.__name__,
            )
        except Exception as exc:  # a format this data does not fit (or a missing library)
            logger.debug("Storing %r with %s failed: %s", reportable, codec.dump.__name__, exc)
        for leftover in set(os.listdir(folder)) - before:
            os.remove(os.path.join(folder, leftover))
    return _CACHED_KIND, {}


def _keep_rendered(
    reportable: Reportable, folder: str, data: dict[str, Any], fragment: str
) -> None:
    """Let a live reportable reuse what was just rendered for its cache, so the report shows
    what a cached rerun shows: a figure its cached image, a ``DFReporter`` its stored table
    (until its ``df`` is replaced), instead of drawing or formatting it again."""
    if isinstance(reportable, (FigureReporter, LinePlotReporter)) and "image" in data:
        reportable.image_data = _read_bytes(folder, data["image"])
    elif isinstance(reportable, DFReporter) and type(reportable).html is DFReporter.html:
        reportable.keep_table(fragment)


def _files_under(folder: str) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
        for root, _, names in os.walk(folder)
        for name in names
    )


def _store_one(
    reportable: Reportable, stage_name: str, stage_folder: str, relative_folder: str
) -> dict[str, Any]:
    folder = os.path.join(stage_folder, relative_folder)
    fragment = render_fragment(reportable, os.path.join(folder, _RENDERED))
    kind, data = _store_data(reportable, folder, fragment)
    _keep_rendered(reportable, folder, data, fragment)
    cls = type(reportable)
    entry = {
        "kind": kind,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "name": reportable.name,
        "group": reportable.group,
        "qualified_name": reportable.qualified_name,
        "stage": reportable.stage or stage_name,
        "folder": relative_folder.replace(os.sep, "/"),
        "files": _files_under(folder),
        "html": fragment,
        "data": data,
    }
    json.dumps(_check_entry(entry))  # a problem fails this reportable only, not the manifest
    return entry


def _remove_other_generations(stage_folder: str, keep: str) -> None:
    for entry in os.listdir(stage_folder):
        if entry.startswith(_GENERATION_PREFIX) and entry != keep:
            shutil.rmtree(os.path.join(stage_folder, entry), ignore_errors=True)


def save_stage_reportables(manager: Any, record: Any, stage_name: str) -> str | None:
    """Store the reportables ``record`` reported in ``stage_name``; return the manifest path.

    Nothing is written in dry or dry-cache runs, nor for a stage that reported nothing and has
    no reportables folder yet (an existing one gets an empty manifest, so stale reportables do
    not come back). A reportable that cannot be rendered or stored is left out with a
    ``CurifactoryWarning``: it is still in this run's report, only not in a cached rerun's.
    """
    if getattr(manager, "dry", False) or getattr(manager, "dry_cache", False):
        return None
    reportables = [
        reportable
        for reportable in manager.reportables
        if reportable.record is record and reportable.stage == stage_name
    ]
    existing = record.get_path(FOLDER_SUFFIX, stage_name=stage_name, track=False)
    if not reportables and not os.path.isdir(existing):
        return None
    stage_folder = record.get_dir(FOLDER_SUFFIX, stage_name=stage_name)
    generation = f"{_GENERATION_PREFIX}{uuid.uuid4().hex[:12]}"
    entries = []
    for position, reportable in enumerate(reportables):
        relative_folder = os.path.join(generation, _entry_folder_name(position, reportable))
        try:
            entries.append(_store_one(reportable, stage_name, stage_folder, relative_folder))
        except Exception as exc:
            shutil.rmtree(os.path.join(stage_folder, relative_folder), ignore_errors=True)
            warnings.warn(
                f"{_describe(reportable, stage_name)} cannot be rendered or stored in the cache "
                f"({type(exc).__name__}: {exc}), so a cached rerun of the stage will not show "
                "it; make its render() and html() work on a fresh folder",
                CurifactoryWarning,
                stacklevel=2,
            )
            continue
        logger.debug("Cached reportable '%s' as %s", reportable.qualified_name, entries[-1]["kind"])

    manifest_path = os.path.join(stage_folder, MANIFEST_NAME)
    manifest = {"format": MANIFEST_FORMAT, "stage": stage_name, "reportables": entries}
    try:
        with atomic_open(manifest_path, "w", encoding="utf-8") as outfile:
            json.dump(manifest, outfile, indent=2)
    except (OSError, TypeError, ValueError) as exc:
        shutil.rmtree(os.path.join(stage_folder, generation), ignore_errors=True)
        warnings.warn(
            f"stage '{stage_name}': the reportables manifest {manifest_path} cannot be written "
            f"({type(exc).__name__}: {exc}), so a cached rerun of the stage will not show its "
            "reportables",
            CurifactoryWarning,
            stacklevel=2,
        )
        return None
    _remove_other_generations(stage_folder, keep=generation)
    return manifest_path


# -- loading -----------------------------------------------------------------------------------


def _read_manifest(path: str) -> list[Any]:
    """The manifest's entries (unchecked); ``ValueError`` or ``OSError`` when it is not one
    this module wrote."""
    with open(path, encoding="utf-8") as infile:
        manifest = json.load(infile)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"it is not a {MANIFEST_FORMAT} manifest")
    entries = manifest.get("reportables")
    if not isinstance(entries, list):
        raise ValueError("its 'reportables' is not a list")
    return entries


def _entry_label(entry: Any, position: int) -> str:
    name = entry.get("qualified_name") if isinstance(entry, dict) else None
    return repr(name) if isinstance(name, str) else f"number {position}"


def _rebuild(entry: Any, stage_folder: str) -> Reportable:
    """The reportable an entry describes: its built-in class, else a ``CachedReportable``."""
    entry = _check_entry(entry)
    folder = _inside(stage_folder, entry["folder"])
    missing = [name for name in entry["files"] if not os.path.isfile(_inside(folder, name))]
    if missing:
        raise FileNotFoundError(f"its cached file(s) {missing} are gone")
    name, group = entry["name"], entry["group"]
    reportable: Reportable | None = None
    loader = _LOADERS.get(entry["kind"])
    lazy_loader = _LAZY_LOADERS.get(entry["kind"])
    if loader is not None:
        try:
            if lazy_loader is not None:
                reportable = lazy_loader(entry["data"], folder, name, group, entry["html"])
            else:
                reportable = loader(entry["data"], folder, name, group)
        except Exception as exc:
            warnings.warn(
                f"cached reportable {entry['qualified_name']!r} of stage '{entry['stage']}' "
                f"cannot be rebuilt as a {entry['kind']} ({type(exc).__name__}: {exc}); it "
                "is shown from its stored HTML instead",
                CurifactoryWarning,
                stacklevel=3,
            )
    if reportable is None:
        reportable = CachedReportable(
            entry["html"], os.path.join(folder, _RENDERED), entry["class"], name=name, group=group
        )
    reportable.qualified_name = entry["qualified_name"]
    reportable.stage = entry["stage"]
    return reportable


def _warn_about_pickled_reportables(record: Any, stage_name: str) -> None:
    """Say so when the stage's reportables were cached as pickles (curifactory's list file)."""
    list_path = record.get_path(LEGACY_LIST_NAME + ".json", stage_name=stage_name, track=False)
    if os.path.exists(list_path):
        warnings.warn(
            f"stage '{stage_name}': its reportables were cached as pickles ({list_path}), "
            "which are never loaded, so they are left out of the report. Rerun the stage with "
            f"--overwrite-stage {stage_name} to cache them as rendered files",
            CurifactoryWarning,
            stacklevel=3,
        )


def load_stage_reportables(manager: Any, record: Any, stage_name: str) -> int:
    """Report again, on ``record``, the reportables cached for ``stage_name``; return how many.

    Nothing happens when the stage has no manifest (it reported nothing, or never ran). A
    manifest that cannot be read, or an entry whose files are gone, is left out with a
    ``CurifactoryWarning``; the run goes on. Nothing is unpickled.
    """
    stage_folder = record.get_path(FOLDER_SUFFIX, stage_name=stage_name, track=False)
    manifest_path = os.path.join(stage_folder, MANIFEST_NAME)
    if not os.path.exists(manifest_path):
        _warn_about_pickled_reportables(record, stage_name)
        return 0
    try:
        entries = _read_manifest(manifest_path)
    except (OSError, ValueError) as exc:
        warnings.warn(
            f"stage '{stage_name}': the cached reportables manifest {manifest_path} cannot be "
            f"read ({type(exc).__name__}: {exc}); the stage's reportables are left out of this "
            f"report. Rerun it with --overwrite-stage {stage_name} to recreate them",
            CurifactoryWarning,
            stacklevel=2,
        )
        return 0
    record.get_path(FOLDER_SUFFIX, stage_name=stage_name)  # tracked: --store-full copies it
    restored = 0
    for position, entry in enumerate(entries):
        try:
            reportable = _rebuild(entry, stage_folder)
        except (OSError, ValueError) as exc:
            warnings.warn(
                f"cached reportable {_entry_label(entry, position)} of stage '{stage_name}' "
                f"cannot be loaded ({type(exc).__name__}: {exc}); it is left out of the report. Rerun "
                f"the stage with --overwrite-stage {stage_name} to recreate it",
                CurifactoryWarning,
                stacklevel=2,
            )
            continue
        logger.debug("Reusing cached reportable '%s'", reportable.qualified_name)
        record.report(reportable)
        restored += 1
    return restored
