"""The end of a run: record artifacts and the final status, write the report, the runs index
and the experiment notebook; and recording a run that failed before any stage ran.

The final registry status is written last: it is the run's commit point, so a run killed before
it stays ``incomplete`` (docs/reliability.md).
"""

from __future__ import annotations

import datetime
import logging
import os
import traceback

from . import gcpolicy
from .caching import sidecars
from .errors import CurifactoryError
from .manager import ArtifactManager

logger = logging.getLogger("curifactory_like.experiment")


def finish_run(mngr: ArtifactManager, write_report: bool) -> None:
    """Record artifacts and the final status, then write the report (even for a failed run)."""
    import shutil

    mngr.run_end_timestamp = datetime.datetime.now()
    for path in mngr.temporary_paths:
        shutil.rmtree(path, ignore_errors=True)
    mngr.temporary_paths.clear()
    mngr.record_artifacts()
    if not (mngr.dry or mngr.dry_cache):
        sidecars.save_index(str(mngr.cache_path), mngr._get_name())
    if gcpolicy.in_batch_mode():  # nothing reads sidecars from here on: room for the report
        sidecars.forget_sidecars()
    try:
        from .explain import record_run_code

        record_run_code(mngr)
    except Exception as exc:  # code provenance must not hide the run's own outcome
        logger.warning("Could not record the stages' code fingerprints: %s", exc)
    if write_report:
        try:
            mngr.generate_report()
        except Exception as exc:  # a broken report must not hide the run's own outcome
            logger.error("The run report could not be written: %s: %s", type(exc).__name__, exc)
            logger.debug(traceback.format_exc())
    if mngr.graph_prefetch is not None:  # not taken: no report, or it failed before the graph
        from .reporting.graph_prefetch import discard

        discard(mngr.graph_prefetch)
        mngr.graph_prefetch = None
    if mngr.store_full and not mngr.dry and mngr.stored:
        from .runstore import complete_run_folder

        try:
            complete_run_folder(mngr)
        except Exception as exc:  # the run's own outcome stands; say what the folder lacks
            logger.error(
                "The run folder of %s could not be completed (it has no manifest, so it cannot "
                "be reproduced or exported): %s: %s",
                mngr.get_reference_name(), type(exc).__name__, exc,
            )
            logger.debug(traceback.format_exc())
    # the final status is written last: a run killed before this point stays `incomplete`
    mngr.store()
    if write_report and not mngr.dry:
        _refresh_report_index(mngr)


def _refresh_report_index(mngr: ArtifactManager) -> None:
    """Rewrite the runs index if a run that finished meanwhile changed it (concurrent runs)."""
    from .reporting.report_index import update_report_index

    try:
        update_report_index(mngr.reports_path, mngr.manager_cache_path, only_if_changed=True)
    except Exception as exc:  # the index is a derived page; the run itself is recorded
        logger.error("The runs index could not be updated: %s: %s", type(exc).__name__, exc)


def write_notebook(mngr: ArtifactManager, errored: bool) -> None:
    from .notebook import write_experiment_notebook

    folder = os.path.join(str(mngr.notebooks_path), "experiments")
    os.makedirs(folder, exist_ok=True)
    write_experiment_notebook(mngr, os.path.join(folder, mngr.get_reference_name()), errored=errored)


def record_failure(mngr: ArtifactManager, exc: BaseException, write_report: bool) -> None:
    """Mark a run that failed before any stage ran as ``error``: registry row and report."""
    mngr.status = "error"
    mngr.error = f"{type(exc).__name__} - {exc}"
    mngr.error_exception = exc
    logger.error("%s", exc.detailed() if isinstance(exc, CurifactoryError) else exc)
    if mngr.parallel_mode:
        return
    try:
        finish_run(mngr, write_report)
    except Exception:  # the original error matters more than a registry problem
        logger.debug("could not record the failed run", exc_info=True)
