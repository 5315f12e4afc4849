"""Scheduling a mapped, planned run on an executor.

The parent knows every stage call and every cache key before anything runs. Only the calls the
plan says must execute are turned into tasks; each is submitted as soon as the calls producing
its inputs have finished, so independent records and branches run concurrently and an
aggregate waits for all of its inputs. Two calls writing the same cache paths run once. A
failing call fails its dependents (``upstream_failed``); independent work continues unless
``fail_fast``. The outcome of every call is returned; the parent then replays the experiment
with each executed call read back from the cache.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from .executors.base import (
    CallState,
    Executor,
    InputRef,
    RecordSpec,
    StageTask,
    TaskResult,
    WorkerContext,
)
from .plan import StageCall
from .scheduler_progress import ProgressDisplay

logger = logging.getLogger("curifactory_like.scheduler")


@dataclass
class CallOutcome:
    """What happened to one stage call of a scheduled run."""

    key: tuple[int, int]
    stage: str
    record: str
    state: CallState = CallState.PENDING
    seconds: float = 0.0
    error: str | None = None
    carried: dict[str, str] = field(default_factory=dict)
    executor: str = ""
    duplicate_of: tuple[int, int] | None = None

    @property
    def failed(self) -> bool:
        return self.state in (CallState.FAILED, CallState.UPSTREAM_FAILED)


def worker_context(manager: Any, carry_dir: str) -> WorkerContext:
    """The run-wide facts every worker needs."""
    import sys

    from . import hashing

    return WorkerContext(
        cwd=os.getcwd(),
        sys_path=[p for p in sys.path if p],
        config=dict(manager.config),
        experiment_name=str(manager.experiment_name),
        prefix=manager.prefix,
        cache_path=str(manager.cache_path),
        hash_mode=hashing.active_hash_mode(),
        lazy=manager.lazy,
        ignore_lazy=manager.ignore_lazy,
        reference=manager.get_reference_name(),
        run_number=manager.experiment_run_number,
        run_timestamp=manager.run_timestamp,
        carry_dir=carry_dir,
        log_level=logging.getLogger("curifactory_like").getEffectiveLevel(),
        retries_override=manager.runtime.retries_override,
        timeout_override=manager.runtime.timeout_override,
        git_commit=str(manager.git_commit_hash or ""),
        git_dirty=bool(manager.git_workdir_dirty),
    )


class Scheduler:
    """Runs the executing calls of ``manager.map`` on ``executor``."""

    def __init__(
        self, manager: Any, executor: Executor, fail_fast: bool = False, progress: bool = False
    ):
        self.manager = manager
        self.progress = progress
        self.dag = manager.map
        self.executor = executor
        self.fail_fast = fail_fast
        self.outcomes: dict[tuple[int, int], CallOutcome] = {}
        self._producer_of: dict[int, StageCall] = {}
        self._record_specs: dict[int, RecordSpec] = {}
        self._tasks: dict[int, StageCall] = {}
        self._ready: list[int] = []
        """Calls whose inputs all exist, in the order they became ready."""
        # the state of one run() (set there; the methods below read and update it)
        self._by_id: dict[int, StageCall] = {}
        """Every mapped call by id."""
        self._pending: dict[int, StageCall] = {}
        """Executing calls not yet submitted."""
        self._waiting_on: dict[int, set[int]] = {}
        """Call id -> the executing calls it still waits for."""
        self._cache_keys: dict[int, tuple[str, ...] | None] = {}
        """Call id -> its sorted output paths (``None``: not comparable)."""
        self._running_keys: dict[tuple[str, ...], StageCall] = {}
        """Output paths of a submitted call -> that call (identical calls wait for it)."""
        self._same_key: dict[tuple[str, ...], list[int]] = {}
        self._chains: dict[int, list[int]] = {}
        """Chain head -> the calls (head first) submitted with it as one task."""
        self._followers: dict[int, list[int]] = {}
        """Task id of a running chain -> the follower calls submitted with it."""

    # ------------------------------------------------------------------ building tasks

    def _record_spec(self, index: int) -> RecordSpec:
        spec = self._record_specs.get(index)
        if spec is None:
            record = self.dag.records[index]
            spec = RecordSpec(
                index=index,
                params_blob=cloudpickle.dumps(record.params) if record.params is not None else None,
                hash=record.get_hash(),
                is_aggregate=record.is_aggregate,
                combo_hash=record.combo_hash,
                input_records=tuple(self.dag.records.index(r) for r in record.input_records),
            )
            self._record_specs[index] = spec
        return spec

    def _input_ref(
        self,
        artifact_index: int,
        records: dict[int, RecordSpec],
        chain: frozenset[int] = frozenset(),
    ) -> InputRef:
        artifact = self.dag.artifacts[artifact_index]
        records.setdefault(artifact.record_index, self._record_spec(artifact.record_index))
        producer = self._producer_of.get(artifact_index)
        name = str(artifact.name)
        if producer is not None and producer.call_id in chain:
            return InputRef(artifact.record_index, artifact.stage_name, name, in_chain=True)
        if artifact.cacher is None:
            outcome = self.outcomes.get(producer.key) if producer is not None else None
            carried = outcome.carried.get(name) if outcome is not None else None
            return InputRef(artifact.record_index, artifact.stage_name, name, carried_path=carried)
        detached = copy.copy(artifact.cacher)
        detached.record = None
        detached.metadata = None
        detached.cache_paths = []
        lazy = False
        if producer is not None and producer.detail is not None:
            from .caching.lazy import Lazy

            lazy = any(
                isinstance(o, Lazy) and str(o) == name for o in producer.detail.definition.outputs
            )
        return InputRef(
            artifact.record_index,
            artifact.stage_name,
            name,
            cacher_blob=cloudpickle.dumps(detached),
            lazy=lazy,
        )

    def _task(
        self, task_id: int, call: StageCall, chain: frozenset[int] = frozenset()
    ) -> StageTask:
        detail = call.detail
        assert detail is not None, f"no map detail for {call.stage_name}"
        definition = detail.definition
        records = {call.record_index: self._record_spec(call.record_index)}
        for index in detail.input_records:
            records[index] = self._record_spec(index)
        inputs: dict[str, Any] = {}
        for name, source in detail.inputs.items():
            if isinstance(source, list):
                inputs[name] = [(r, self._input_ref(a, records, chain)) for r, a in source]
            else:
                inputs[name] = self._input_ref(source, records, chain)
        importable = "<locals>" not in definition.qualname
        decision = self.dag.plan.decisions[call.key]
        return StageTask(
            task_id=task_id,
            key=call.key,
            stage_module=definition.module,
            stage_qualname=definition.qualname,
            stage_blob=None if importable else cloudpickle.dumps(definition),
            record=records[call.record_index],
            records=records,
            inputs=inputs,
            args_blob=cloudpickle.dumps((detail.args, detail.kwargs)),
            prior_stages=list(detail.prior_stages),
            overwrite=decision.action.value == "overwrite",
            label=f"stage '{call.stage_name}' of {call.record_name}",
            timeout=self.manager.runtime.timeout_override or definition.timeout,
            attempts=1 + (
                self.manager.runtime.retries_override
                if self.manager.runtime.retries_override is not None
                else definition.retries
            ),
            resources=dict(definition.resources),
        )

    # ------------------------------------------------------------------ running

    def run(self, context: WorkerContext) -> dict[tuple[int, int], CallOutcome]:
        """Run every executing call; return the outcome of each by (record, position)."""
        plan = self.dag.plan
        executing = [c for c in self.dag.calls if plan.decisions[c.key].action.executes]
        for call in self.dag.calls:
            for artifact_index in call.output_artifacts:
                self._producer_of[artifact_index] = call
        for call in executing:
            self.outcomes[call.key] = CallOutcome(call.key, call.stage_name, call.record_name)
        if not executing:
            return self.outcomes
        self._by_id = {c.call_id: c for c in self.dag.calls}
        self._waiting_on = {
            c.call_id: {
                p for p in c.producers if plan.decisions[self._by_id[p].key].action.executes
            }
            for c in executing
        }
        self._cache_keys = {c.call_id: self._cache_key(c) for c in executing}
        self._same_key = {}
        for call_id, cache_key in self._cache_keys.items():
            if cache_key is not None:
                self._same_key.setdefault(cache_key, []).append(call_id)
        self._running_keys = {}
        self._pending = {c.call_id: c for c in executing}
        self._ready = [c.call_id for c in executing if not self._waiting_on[c.call_id]]
        if self.executor.chains:
            self._chains = self._build_chains(executing)
        self.executor.start(context)
        started = time.perf_counter()
        display = ProgressDisplay(len(executing), self.executor.name) if self.progress else None
        try:
            while self._pending or self._tasks:
                self._submit_ready()
                if display is not None:
                    display.update(self.outcomes.values())
                if not self._tasks:
                    break
                for result in self.executor.collect(timeout=None):
                    self._finish_task(result)
        finally:
            self.executor.stop()
            if display is not None:
                display.update(self.outcomes.values())
                display.stop()
        logger.info(
            "Scheduled %d stage calls on the %s executor in %.2f s",
            len(executing),
            self.executor.name,
            time.perf_counter() - started,
        )
        return self.outcomes

    def _build_chains(self, executing: list[StageCall]) -> dict[int, list[int]]:
        """Group each record's dependent calls into chains run as one task.

        A call joins the chain of its producers when every executing call it depends on is in
        that one chain of the same record, and neither it nor the chain's head is an aggregate
        call, has a timeout (the parent enforces timeouts per task) or shares its cache paths
        with another call (such calls run once, see ``_same_key``). Calls are visited in run order, so producers come first.
        """
        head_of: dict[int, int] = {}
        chains: dict[int, list[int]] = {}
        for call in executing:
            call_id = call.call_id
            producers = self._waiting_on[call_id]
            heads = {head_of.get(p) for p in producers}
            head = next(iter(heads)) if len(heads) == 1 else None
            chainable = self._chainable(call)
            if (
                chainable
                and head is not None
                and head in chains
                and self._by_id[head].record_index == call.record_index
            ):
                head_of[call_id] = head
                chains[head].append(call_id)
                continue
            head_of[call_id] = call_id
            if chainable:
                chains[call_id] = [call_id]
        return {head: members for head, members in chains.items() if len(members) > 1}

    def _chainable(self, call: StageCall) -> bool:
        if call.is_aggregate or call.detail is None:
            return False
        if self.manager.runtime.timeout_override or call.detail.definition.timeout:
            return False
        key = self._cache_keys.get(call.call_id)
        return key is None or len(self._same_key.get(key, [])) == 1

    def _cache_key(self, call: StageCall) -> tuple[str, ...] | None:
        paths = [getattr(self.dag.artifacts[a], "path", None) for a in call.output_artifacts]
        if not paths or any(p is None for p in paths):
            return None
        return tuple(sorted(str(p) for p in paths))

    def _submit_ready(self) -> None:
        pending, running_keys = self._pending, self._running_keys
        ready, self._ready = self._ready, []
        for call_id in ready:
            if call_id not in pending:
                continue
            call = pending[call_id]
            key = self._cache_keys[call_id]
            if key is not None and key in running_keys:
                continue  # an identical call is running; this one completes with it
            del pending[call_id]
            outcome = self.outcomes[call.key]
            if key is not None:
                running_keys[key] = call
            try:
                task = self._task(call_id, call)
            except Exception as exc:
                outcome.state = CallState.FAILED
                outcome.error = f"could not prepare the call: {type(exc).__name__}: {exc}"
                if key is not None:
                    running_keys.pop(key, None)
                self._release(call, False)
                continue
            outcome.state = CallState.RUNNING
            outcome.executor = self.executor.name
            self._tasks[call_id] = call
            self._attach_followers(task)
            self.executor.submit(task)

    def _attach_followers(self, task: StageTask) -> None:
        """Add the rest of the task's chain to it (all of it, or none when one cannot be built)."""
        pending = self._pending
        members = self._chains.pop(task.task_id, None)
        if not members or any(m not in pending for m in members[1:]):
            return
        chain = frozenset(members)
        try:
            followers = [self._task(m, pending[m], chain) for m in members[1:]]
        except Exception:
            return  # each follower is then submitted on its own, which reports the error
        for follower in followers:
            call = pending.pop(follower.task_id)
            outcome = self.outcomes[call.key]
            outcome.state = CallState.RUNNING
            outcome.executor = self.executor.name
            key = self._cache_keys[call.call_id]
            if key is not None:
                self._running_keys[key] = call
            self._tasks[call.call_id] = call
        task.followers = followers
        self._followers[task.task_id] = members[1:]

    def _finish_task(self, result: TaskResult) -> None:
        """Record a task's result and those of its followers; followers that did not run (the
        chain stopped at a failure, or its worker died) wait again like any pending call."""
        ran = {r.task_id for r in result.followers}
        for follower_id in self._followers.pop(result.task_id, []):
            if follower_id in ran:
                continue
            call = self._tasks.pop(follower_id)
            key = self._cache_keys[follower_id]
            if key is not None:
                self._running_keys.pop(key, None)
            self.outcomes[call.key].state = CallState.PENDING
            self.outcomes[call.key].executor = ""
            self._pending[follower_id] = call
            if not self._waiting_on.get(follower_id):
                self._ready.append(follower_id)
        self._finish(result)
        for follower_result in result.followers:
            self._finish(follower_result)

    def _finish(self, result: TaskResult) -> None:
        pending = self._pending
        call = self._tasks.pop(result.task_id)
        outcome = self.outcomes[call.key]
        outcome.seconds = result.seconds
        for line in result.log_lines:
            logger.info("%s", line)
        if result.ok:
            outcome.state = CallState.FINISHED
            outcome.carried = dict(result.carried)
        else:
            outcome.state = CallState.FAILED
            outcome.error = result.error
            logger.error("%s failed:\n%s", outcome_label(call), (result.error or "").rstrip())
        key = self._cache_keys[call.call_id]
        same = self._same_key.get(key, []) if key is not None else []
        twins = [pending[twin_id] for twin_id in same if twin_id in pending]
        for twin in twins:
            del pending[twin.call_id]
            twin_outcome = self.outcomes[twin.key]
            twin_outcome.duplicate_of = call.key
            twin_outcome.executor = self.executor.name
            twin_outcome.state = CallState.CACHED if result.ok else CallState.FAILED
            twin_outcome.error = result.error
            self._release(twin, result.ok)
        if key is not None:
            self._running_keys.pop(key, None)
        self._release(call, result.ok)
        if not result.ok and self.fail_fast:
            for left in list(pending.values()):
                self.outcomes[left.key].state = CallState.UPSTREAM_FAILED
                self.outcomes[left.key].error = "not run: --fail-fast after a failure"
                del pending[left.call_id]

    def _release(self, call: StageCall, ok: bool) -> None:
        """Let ``call``'s consumers run (``ok``), or fail them and theirs (``upstream_failed``)."""
        pending = self._pending
        if ok:
            for consumer_id in call.consumers:
                waits = self._waiting_on.get(consumer_id)
                if waits is None:
                    continue
                waits.discard(call.call_id)
                if not waits and consumer_id in pending:
                    self._ready.append(consumer_id)
            return
        stack = list(call.consumers)
        while stack:
            consumer_id = stack.pop()
            consumer: StageCall = self._by_id[consumer_id]
            if consumer_id in pending:
                del pending[consumer_id]
                self.outcomes[consumer.key].state = CallState.UPSTREAM_FAILED
                self.outcomes[consumer.key].error = f"not run: {outcome_label(call)} failed"
                stack.extend(consumer.consumers)


def outcome_label(call: StageCall) -> str:
    return f"stage '{call.stage_name}' of {call.record_name}"
