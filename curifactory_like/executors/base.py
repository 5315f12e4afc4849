"""The executor interface and the plain data that crosses process boundaries.

An executor runs ``StageTask``s somewhere (this process, local worker processes, a Dask
cluster) and hands back ``TaskResult``s. Tasks carry work by reference: the stage's module and
qualified name, the records' parameters and hashes, and where each input artifact lives; the
worker rebuilds the records, loads the inputs from the cache, runs the stage, writes its
outputs, sidecars and reportables atomically, and returns metadata only.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Any


class CallState(enum.Enum):
    """The life of one stage call in a scheduled run."""

    PENDING = "pending"  # waiting for its inputs
    RUNNING = "running"  # submitted to the executor
    FINISHED = "finished"  # ran and wrote its outputs
    CACHED = "cached"  # nothing to do: outputs were already in the cache
    FAILED = "failed"  # raised, timed out, or its worker died
    UPSTREAM_FAILED = "upstream_failed"  # not run: a call it depends on failed
    SKIPPED = "skipped"  # not needed by any computing call


@dataclass(frozen=True)
class RecordSpec:
    """A record as a worker rebuilds it: parameters (cloudpickled) and its hash."""

    index: int
    params_blob: bytes | None
    hash: str
    is_aggregate: bool
    combo_hash: str | None
    input_records: tuple[int, ...] = ()


@dataclass(frozen=True)
class InputRef:
    """Where one input value comes from: a producer's cacher, or a carried pickle."""

    record_index: int
    stage_name: str
    output_name: str
    cacher_blob: bytes | None = None
    carried_path: str | None = None
    lazy: bool = False
    in_chain: bool = False
    """Made by an earlier call of the same task chain: the worker already holds the value."""


@dataclass
class WorkerContext:
    """What every worker needs once: the project, its configuration and the run identity."""

    cwd: str
    sys_path: list[str]
    config: dict[str, Any]
    experiment_name: str
    prefix: str | None
    cache_path: str
    hash_mode: str
    lazy: bool
    ignore_lazy: bool
    reference: str
    run_number: int
    run_timestamp: Any
    carry_dir: str
    log_level: int
    retries_override: int | None = None
    timeout_override: float | None = None
    git_commit: str = ""
    git_dirty: bool = False


@dataclass
class StageTask:
    """One stage call to run on an executor."""

    task_id: int
    key: tuple[int, int]
    """(record index, position in the record) of the call in the parent."""
    stage_module: str
    stage_qualname: str
    stage_blob: bytes | None
    """The stage function pickled by value, only when it cannot be imported by name."""
    record: RecordSpec
    records: dict[int, RecordSpec]
    inputs: dict[str, Any]
    """Input name -> InputRef (stage) or [(record index, InputRef)] (aggregate)."""
    args_blob: bytes
    prior_stages: list[str]
    overwrite: bool
    label: str
    timeout: float | None = None
    """Seconds each attempt may take."""
    attempts: int = 1
    """1 + retries: the parent allows ``timeout * attempts`` before stopping a worker."""
    resources: dict[str, float] = field(default_factory=dict)
    followers: list[StageTask] = field(default_factory=list)
    """Calls of the same record run after this one in the same worker, in order, with the
    values computed by earlier calls of the chain kept in memory (see ``Executor.chains``)."""


@dataclass
class TaskResult:
    """What comes back from a worker: metadata, never the stage's output values."""

    task_id: int
    ok: bool
    seconds: float = 0.0
    error: str | None = None
    """The traceback text when the call failed."""
    error_type: str | None = None
    outputs: list[str] = field(default_factory=list)
    """Cache paths written."""
    carried: dict[str, str] = field(default_factory=dict)
    """Output name -> carried pickle, for outputs without a cacher."""
    log_lines: list[str] = field(default_factory=list)
    worker: str = ""
    followers: list[TaskResult] = field(default_factory=list)
    """Results of the task's followers that ran (a chain stops at its first failure)."""


class Executor(abc.ABC):
    """Runs stage tasks. ``start``, ``submit``, ``collect`` (wait for results), ``stop``."""

    name = "executor"
    chains = False
    """Whether the executor runs a task's ``followers`` (a record's chain of dependent calls as
    one task, so intermediates stay in the worker's memory instead of being reloaded)."""

    @abc.abstractmethod
    def start(self, context: WorkerContext) -> None:
        """Prepare workers for this run."""

    @abc.abstractmethod
    def submit(self, task: StageTask) -> None:
        """Queue a task; it starts as soon as a worker is free."""

    @abc.abstractmethod
    def collect(self, timeout: float | None = None) -> list[TaskResult]:
        """Wait until at least one submitted task has finished (or ``timeout``); return them."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Release workers; pending tasks are abandoned."""

    @property
    @abc.abstractmethod
    def slots(self) -> int:
        """How many tasks may run at once."""
