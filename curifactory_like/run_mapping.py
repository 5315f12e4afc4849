"""The map pass of a run (``run()`` with every stage only recorded), and what is done with the
map alone: the ``--paths`` listing, the progress display, warnings about damaged artifacts the
run will not read."""

from __future__ import annotations

import logging
import warnings
from typing import Any

from .errors import UnknownStageError
from .manager import ArtifactManager

logger = logging.getLogger("curifactory_like.experiment")


def map_experiment(module: Any, param_sets: list[Any], mngr: ArtifactManager) -> None:
    logger.info("Pre-mapping stages and records")
    mngr.map_mode = True
    try:
        module.run(param_sets, mngr)
    finally:
        mngr.map_mode = False
    mngr.map_records()
    assert mngr.map is not None
    known = {stage for record in mngr.map.records for stage in record.stages}
    unknown = [name for name in mngr.overwrite_stages if name not in known]
    if unknown:
        raise UnknownStageError(
            f"--overwrite-stage {unknown[0]!r} names no stage of this experiment; its stages "
            f"are: {', '.join(sorted(known))}"
        )
    _warn_about_unneeded_damage(mngr)
    logger.info("Stage map collected")


def _warn_about_unneeded_damage(mngr: ArtifactManager) -> None:
    """Name damaged cached artifacts this run will not read (so will not recompute either)."""
    from .errors import CacheIntegrityWarning
    from .plan import Action

    dag = mngr.map
    if dag is None or dag.plan is None:
        return
    for call in dag.calls:
        decision = dag.plan.decisions.get(call.key)
        if decision is None or decision.action is not Action.SKIP:
            continue
        for index in call.output_artifacts:
            artifact = dag.artifacts[index]
            problem = getattr(artifact, "problem", None)
            if problem:
                warnings.warn(
                    f"stage '{call.stage_name}': cached artifact {getattr(artifact, 'path', '?')} "
                    f"failed its integrity check ({problem}); this run does not need it, so it "
                    "is never loaded and is recomputed by the first run that needs it",
                    CacheIntegrityWarning,
                    stacklevel=2,
                )


def artifact_paths(mngr: ArtifactManager) -> list[str]:
    assert mngr.map is not None
    paths: list[str] = []
    for artifact in mngr.map.artifacts:
        if artifact.cacher is None:
            continue
        for path in [*artifact.cacher.cache_paths, artifact.cacher.get_path("_metadata.json")]:
            if path not in paths:
                paths.append(path)
    return paths


def start_progress(mngr: ArtifactManager) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    assert mngr.map is not None
    progress = Progress(
        TextColumn("{task.completed}/{task.total}"),
        BarColumn(bar_width=30),
        TextColumn("[progress.description]{task.description}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[name]}"),
    )
    record_tasks = {}
    for index, record in enumerate(mngr.map.records):
        name = record.params.name if record.params is not None else "None"
        if record.is_aggregate:
            name += " (aggregate)"
        record_tasks[index] = progress.add_task(
            f"Record {index}, params: {name}, hash: {record.get_hash()[:8]}",
            total=len(record.stages),
            name="",
        )
    progress.record_tasks = record_tasks  # type: ignore[attr-defined]
    mngr.map_progress_overall_task_id = progress.add_task(
        f"Total ({mngr.get_reference_name()})", total=len(mngr.map.records), name=""
    )
    mngr.map_progress = progress
    progress.start()
