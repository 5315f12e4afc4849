"""Keeping a stage's reportables with its cached outputs, so a cached rerun still reports them.

After a stage computes, each reportable it reported is pickled (a shallow copy with ``record``
cleared) into the record's ``<prefix>_<hash>_<stage>_reportables/`` folder, and the list of
those files is saved by a ``FileReferenceCacher`` named ``reportables_file_list`` (as
curifactory does). When the stage is later loaded from cache or skipped, the list is read and
every reportable is reported on the new record again. Both folders are tracked paths, so a
``--store-full`` run copies them into its own folder.

The manager calls these through ``store_reportables`` / ``restore_cached_reportables``.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from typing import Any

import cloudpickle

from curifactory_like.caching import FileReferenceCacher, atomic_open
from curifactory_like.errors import CurifactoryWarning

__all__ = ["load_stage_reportables", "save_stage_reportables"]

logger = logging.getLogger(__name__)

LIST_NAME = "reportables_file_list"
"""Artifact name of the cached list of pickled reportables (curifactory's name)."""


def _list_cacher(record: Any, stage_name: str) -> FileReferenceCacher:
    cacher = FileReferenceCacher(name=LIST_NAME)
    cacher.stage = stage_name
    cacher.set_record(record)
    return cacher


def _pickle_name(reportable: Any, position: int) -> str:
    stem = str(getattr(reportable, "qualified_name", None) or f"reportable_{position}")
    for separator in {"/", "\\", os.sep}:
        stem = stem.replace(separator, "_")
    return stem + ".pkl"


def save_stage_reportables(manager: Any, record: Any, stage_name: str) -> list[str]:
    """Pickle the reportables ``record`` reported in ``stage_name``; return their paths.

    A reportable that cannot be pickled is left out with a ``CurifactoryWarning`` (it still
    appears in this run's report, just not in a cached rerun's).
    """
    reportables = [
        reportable
        for reportable in manager.reportables
        if reportable.record is record and reportable.stage == stage_name
    ]
    if not reportables:
        return []
    folder = record.get_dir("reportables", stage_name=stage_name)
    paths = []
    for position, reportable in enumerate(reportables):
        detached = copy.copy(reportable)  # shallow: the record must not be pickled with it
        detached.record = None
        path = os.path.join(folder, _pickle_name(reportable, position))
        try:
            payload = cloudpickle.dumps(detached)
        except Exception as exc:
            warnings.warn(
                f"stage '{stage_name}': reportable {reportable.qualified_name!r} cannot be "
                f"pickled ({type(exc).__name__}: {exc}), so a cached rerun of the stage will not "
                "show it; keep only picklable data on the reportable",
                CurifactoryWarning,
                stacklevel=2,
            )
            continue
        with atomic_open(path, "wb") as outfile:
            outfile.write(payload)
        logger.debug("Cached reportable '%s'", path)
        paths.append(path)

    cacher = _list_cacher(record, stage_name)
    cacher.save(paths)
    cacher.extra_metadata["reportables"] = True
    cacher.save_metadata()
    return paths


def load_stage_reportables(manager: Any, record: Any, stage_name: str) -> int:
    """Report again, on ``record``, the reportables cached for ``stage_name``; return how many.

    Nothing happens when no list is cached (the stage reported nothing, or it was never run) or
    one of its files is gone. A reportable that cannot be unpickled (its class was renamed or
    removed) is skipped with a ``CurifactoryWarning``.
    """
    cacher = _list_cacher(record, stage_name)
    if not cacher.check():
        return 0
    cacher.load_metadata()
    paths = cacher.load()
    restored = 0
    for path in paths if isinstance(paths, list) else [paths]:
        try:
            with open(path, "rb") as infile:
                reportable = cloudpickle.load(infile)
        except Exception as exc:
            warnings.warn(
                f"stage '{stage_name}': cached reportable {path} cannot be loaded "
                f"({type(exc).__name__}: {exc}); it is left out of the report. Rerun the stage "
                "with --overwrite-stage to recreate it",
                CurifactoryWarning,
                stacklevel=2,
            )
            continue
        logger.debug("Reusing cached reportable '%s'", path)
        record.report(reportable)
        restored += 1
    return restored
