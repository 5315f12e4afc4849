"""Running one StageTask inside a worker (any executor): rebuild, load inputs, run, write.

The worker rebuilds the task's records from their parameters and hashes, binds each input to
the producer's cacher (or the carried pickle of an output without one), and calls the stage
through the normal runtime with a forced "compute" decision, so outputs, sidecars and
reportables are written exactly as a serial run writes them.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
import traceback
from typing import Any

import cloudpickle

from .. import hashing
from ..manager import ArtifactManager
from ..plan import Action, Decision
from ..record import CarriedValue, Record
from .base import InputRef, RecordSpec, StageTask, TaskResult, WorkerContext

_MANAGERS = threading.local()
"""One WorkerManager per thread (Dask may run several tasks of a process at once)."""


class WorkerManager(ArtifactManager):
    """An ArtifactManager for a worker: the parent run's identity, no registry, no git."""

    def __init__(self, context: WorkerContext):
        self._context = context
        super().__init__(
            context.experiment_name,
            prefix=context.prefix,
            parallel_mode=True,
            lazy=context.lazy,
            ignore_lazy=context.ignore_lazy,
            cache_path=context.cache_path,
            manager_cache_path=context.config.get("manager_cache_path"),
            runs_path=context.config.get("runs_path"),
            logs_path=context.config.get("logs_path"),
            reports_path=context.config.get("reports_path"),
            notebooks_path=context.config.get("notebooks_path"),
            status_override="worker",
            suppress_live_log=True,
        )
        self.experiment_run_number = context.run_number
        self.run_timestamp = context.run_timestamp
        self.runtime.retries_override = context.retries_override
        self.runtime.timeout_override = context.timeout_override

    def _collect_git_provenance(self) -> None:
        self.git_commit_hash = self._context.git_commit
        self.git_workdir_dirty = self._context.git_dirty

    def get_reference_name(self) -> str:
        return self._context.reference


class _ListHandler(logging.Handler):
    """Collects formatted log lines of one task so the parent can put them in the run log."""

    def __init__(self, prefix: str):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.prefix = prefix
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{self.prefix} {self.format(record)}")


def prepare_process(context: WorkerContext) -> None:
    """Make this process look like the parent's: cwd, sys.path, hash mode."""
    if os.getcwd() != context.cwd:
        os.chdir(context.cwd)
    for entry in context.sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    hashing.set_hash_mode(context.hash_mode)


def _manager(context: WorkerContext) -> WorkerManager:
    manager = getattr(_MANAGERS, "manager", None)
    if manager is None or manager.get_reference_name() != context.reference:
        prepare_process(context)
        manager = WorkerManager(context)
        _MANAGERS.manager = manager
    manager.records.clear()
    manager.artifacts.clear()
    manager.reportables.clear()
    manager._pending_param_sets.clear()
    manager._pending_combos.clear()
    return manager


def _resolve_definition(task: StageTask) -> Any:
    """The StageDefinition: imported by module and qualified name, else unpickled."""
    if task.stage_blob is not None:
        return cloudpickle.loads(task.stage_blob)
    target: Any = importlib.import_module(task.stage_module)
    for part in task.stage_qualname.split("."):
        target = getattr(target, part)
    return target.stage_definition


def _build_record(manager: WorkerManager, spec: RecordSpec) -> Record:
    params = cloudpickle.loads(spec.params_blob) if spec.params_blob is not None else None
    record = Record(manager, params)
    if spec.is_aggregate:
        record.is_aggregate = True
        record.combo_hash = spec.combo_hash
    return record


def _bind_input(records: dict[int, Record], ref: InputRef) -> Any:
    if ref.carried_path is not None:
        return CarriedValue(ref.output_name, ref.carried_path)
    assert ref.cacher_blob is not None
    cacher = cloudpickle.loads(ref.cacher_blob)
    cacher.record = records[ref.record_index]
    cacher.stage = ref.stage_name
    from ..caching.lazy import Lazy
    from ..record import CachedValue

    handle: Lazy = Lazy(ref.output_name) if ref.lazy else CachedValue(ref.output_name)
    return handle.bind(cacher)


def run_task(context: WorkerContext, task: StageTask) -> TaskResult:
    """Run one task (and its chain of followers, if any); never raises for a failing stage.

    The followers run in order on the same records, so a value one call of the chain computed
    is passed to the next in memory, exactly as in a serial run; every output is still written
    to the cache with its sidecar. The chain stops at the first failing call.
    """
    records: dict[int, Record] = {}
    try:
        manager = _manager(context)
    except BaseException as exc:  # reported to the parent like a failing stage
        return _failure(task, exc, [], time.perf_counter())
    result = _run_one(context, manager, records, task)
    for follower in task.followers:
        if not result.ok or (result.followers and not result.followers[-1].ok):
            break
        result.followers.append(_run_one(context, manager, records, follower))
    return result


def _failure(task: StageTask, exc: BaseException, lines: list[str], started: float) -> TaskResult:
    return TaskResult(
        task.task_id,
        False,
        seconds=time.perf_counter() - started,
        error="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        error_type=type(exc).__name__,
        log_lines=lines,
        worker=f"pid {os.getpid()}",
    )


def _run_one(
    context: WorkerContext, manager: WorkerManager, records: dict[int, Record], task: StageTask
) -> TaskResult:
    started = time.perf_counter()
    handler = _ListHandler(f"[{task.label}]")
    package_logger = logging.getLogger("curifactory_like")
    package_logger.addHandler(handler)
    previous_level = package_logger.level
    package_logger.setLevel(context.log_level)
    try:
        definition = _resolve_definition(task)
        for index, spec in task.records.items():
            if index not in records:
                records[index] = _build_record(manager, spec)
        record = records[task.record.index]
        record.stages = list(task.prior_stages)
        for name, source in task.inputs.items():
            if isinstance(source, list):
                for index, ref in source:
                    if not ref.in_chain:
                        records[index].state[name] = _bind_input(records, ref)
                        records[index].state_artifact_reps[name] = -1
            elif not source.in_chain:
                record.state[name] = _bind_input(records, source)
                record.state_artifact_reps[name] = -1
        args, kwargs = cloudpickle.loads(task.args_blob)
        action = Action.OVERWRITE if task.overwrite else Action.COMPUTE
        manager.runtime.forced_decision = Decision(action, "scheduled", forced=True)
        aggregated = (
            [records[i] for i in task.record.input_records] if definition.is_aggregate else None
        )
        known = len(manager.artifacts)
        manager.runtime.call_stage(definition, record, tuple(args), dict(kwargs), aggregated)
        written = [
            str(a.file)
            for a in manager.artifacts[known:]
            if getattr(a, "file", "no file") != "no file"
        ]
        carried = _carry_outputs(context, task, record, definition)
        return TaskResult(
            task.task_id,
            True,
            seconds=time.perf_counter() - started,
            outputs=written,
            carried=carried,
            log_lines=handler.lines,
            worker=f"pid {os.getpid()}",
        )
    except BaseException as exc:  # reported to the parent, which decides what follows
        return _failure(task, exc, handler.lines, started)
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)


def _carry_outputs(
    context: WorkerContext, task: StageTask, record: Record, definition: Any
) -> dict[str, str]:
    """Pickle outputs that have no cacher so the parent and later tasks can read them."""
    if definition.cachers is not None and not context.lazy:
        return {}
    carried = {}
    cacher_count = len(definition.cachers or [])
    for index, output in enumerate(definition.outputs):
        if index < cacher_count:
            continue
        name = str(output)
        if name not in record.state:
            continue
        os.makedirs(context.carry_dir, exist_ok=True)
        path = os.path.join(
            context.carry_dir, f"{task.record.hash}_{task.key[1]}_{task.stage_qualname}_{name}.pkl"
        )
        with open(path, "wb") as handle:
            cloudpickle.dump(record.state.raw(name), handle)
        carried[name] = path
    return carried
