"""The stage runtime: what happens when a decorated stage is called with a record.

Three situations, chosen by the manager's state:

* **map** (``manager.map_mode``): nothing runs; the call, its inputs and its outputs (with their
  cache status) are recorded for the DAG.
* **planned** (``manager.map`` holds an analysed DAG): the call follows its ``Decision``:
  skip (outputs left on disk behind lazy handles), load, or compute.
* **live** (no map, e.g. a notebook or a script): the call checks the cache and loads or
  computes, as curifactory does.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import inspect
import logging
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import faults, fingerprint, utils
from .caching.artifact_lock import artifact_lock
from .caching.builtin import PickleCacher
from .caching.lazy import Lazy
from .errors import (
    CacheIntegrityWarning,
    CacheWriteError,
    ExecutingWithSkippedInputError,
    InputSignatureError,
    MissingInputError,
    OutputSignatureError,
)
from .plan import Action, CallDetail, Decision
from .record import (
    ArtifactRepresentation,
    CachedValue,
    CarriedValue,
    MapArtifactRepresentation,
    SkippedOutput,
)
from .stage import StageDefinition, _missing_signature_inputs, function_signature

logger = logging.getLogger("curifactory_like.runtime")

_STORAGE_ERRORS = frozenset(
    {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG, errno.EIO}
)
"""errno values that mean the disk or folder, not the cacher, is at fault."""


@dataclass
class CallContext:
    """One call of a stage on one record, prepared for mapping, loading or computing."""

    definition: StageDefinition
    record: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    records: list[Any] | None
    outputs: list[Any]
    cachers: list[Any] | None
    function_inputs: dict[str, Any]
    position: int

    @property
    def name(self) -> str:
        return self.definition.name


@contextlib.contextmanager
def deadline(seconds: float | None, what: str) -> Iterator[None]:
    """Raise StageTimeoutError in the main thread after ``seconds`` (Unix; no-op elsewhere)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "SIGALRM"
    ):
        yield
        return
    from .errors import StageTimeoutError

    def expire(signum: int, frame: Any) -> None:
        raise StageTimeoutError(f"{what} ran past its timeout of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _accepts_var_keyword(function: Any) -> bool:
    import inspect

    try:
        parameters = function_signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class StageRuntime:
    """Interprets stage calls for one ArtifactManager."""

    def __init__(self, manager: Any):
        self.manager = manager
        self.written_this_run: set[str] = set()
        """Cache paths written during this run (identical calls are computed once)."""
        self.calls: list[dict[str, Any]] = []
        """One entry per executed-pass stage call: record, stage, action, seconds, reason."""
        self.failed_call: tuple[str, str] | None = None
        """``(stage name, record name)`` of the first stage call that raised."""
        self.forced_decision: Decision | None = None
        """Set in executor workers: every call computes."""
        self.retries_override: int | None = None
        """``--retries``: retries for every stage (else each stage's own ``retries=``)."""
        self.timeout_override: float | None = None
        """``--timeout``: seconds for every stage (else each stage's own ``timeout=``)."""
        self.scheduled: dict[tuple[int, int], Any] = {}
        """Outcomes of calls an executor already ran, by (record index, position)."""

    # ------------------------------------------------------------------ entry point

    def call_stage(
        self,
        definition: StageDefinition,
        record: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        records: list[Any] | None,
    ) -> Any:
        manager = self.manager
        name = definition.name
        utils.set_logging_prefix(f"[{record.params.name}] " if record.params is not None else "")
        if manager.map_mode:
            logger.debug("Mapping stage %s", name)
        else:
            logger.info("-----")
            logger.info("Stage %s%s", "(aggregate) " if definition.is_aggregate else "", name)
        if manager.stage_active:
            logger.warning(
                "Stage '%s' executed while another stage ('%s') was already running. Directly "
                "executing a stage from another stage is not advised.",
                name,
                manager.current_stage_name,
            )
        definition.raise_declaration_problems()
        context = self._prepare(definition, record, args, kwargs, records)
        try:
            if manager.map_mode:
                self._map(context)
                return record
            decision = self._decide(context)
            if decision.action is Action.SKIP:
                self._skip(context)
                outcome = self.scheduled.get((record.get_record_index(), context.position))
                if outcome is not None:  # ran on an executor: report it as computed there
                    action = "loaded" if outcome.duplicate_of else "computed"
                    for index in record.stage_outputs[-1]:
                        manager.artifacts[index].action = action
                    self._log_call(context, action, outcome.seconds, decision.reason)
                else:
                    self._log_call(context, "skipped", 0.0, decision.reason)
            elif (
                decision.forced and not self._written_earlier_this_run(context)
            ) or not self._load(context):
                self._compute(context, decision.reason)
            else:
                self._log_call(context, "loaded", 0.0, decision.reason)
            return record
        finally:
            manager.stage_active = False
            record.stage_cachers = None
            utils.set_logging_prefix("")
            manager.update_map_progress(record, "continue")

    # ------------------------------------------------------------------ preparation

    def _prepare(
        self,
        definition: StageDefinition,
        record: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        records: list[Any] | None,
    ) -> CallContext:
        manager = self.manager
        name = definition.name
        outputs: list[Any] = list(definition.outputs)
        cachers = [copy.deepcopy(c) for c in definition.cachers] if definition.cachers else None
        if definition.cachers is not None and cachers is None:
            cachers = []
        if not manager.lazy and not manager.ignore_lazy and cachers is None and any(
            isinstance(o, Lazy) for o in outputs
        ):
            raise OutputSignatureError(
                f"Stage outputs for '{name}' contain Lazy objects but do not have cachers "
                "specified. Please provide cachers for this stage."
            )
        if manager.lazy:
            if cachers is None and outputs:
                logger.warning(
                    "Stage %s does not have cachers specified, a --lazy run will force caching "
                    "by applying PickleCachers to anything with none specified, but this can "
                    "potentially cause errors.",
                    name,
                )
                cachers = [PickleCacher for _ in outputs]
            outputs = [o if isinstance(o, Lazy) else Lazy(o) for o in outputs]
        elif manager.ignore_lazy:
            outputs = [o.name if isinstance(o, Lazy) else o for o in outputs]

        if definition.is_aggregate:
            if records is None:
                records = [r for r in manager.records if r is not record]
            record.input_records = records
            record.set_aggregate(records)
        manager.current_stage_name = name
        manager.stage_active = True
        record.stages.append(name)
        record.stage_outputs.append([])
        record.stage_inputs.append([])
        record.stage_suppress_missing.append(definition.suppress_missing_inputs)
        record.stage_kwargs_keys.append(list(kwargs.keys()))
        record.stage_inputs_names.append(list(definition.inputs))
        manager.update_map_progress(record, "start")

        function_inputs = (
            self._aggregate_inputs(definition, record, records or [])
            if definition.is_aggregate
            else self._record_inputs(definition, record, kwargs)
        )
        function_inputs.update(kwargs)
        missing, no_defaults = _missing_signature_inputs(
            definition.function, definition.inputs, function_inputs
        )
        if _accepts_var_keyword(definition.function):
            missing = []
        if manager.map_mode:
            no_defaults = []  # nothing is in state while mapping; checked when executing
        if missing:
            names = ",".join(f'"{m}"' for m in missing)
            raise InputSignatureError(
                f"Signature for stage {name} does not match stage input list. The stage "
                f"function is missing '{names}'"
            )
        if definition.suppress_missing_inputs and no_defaults:
            names = ",".join(f'"{m}"' for m in no_defaults)
            raise InputSignatureError(
                f"Stage {name} is marked to suppress missing inputs but has no defaults in the "
                f"signature for inputs {names}; give them default values"
            )
        if cachers is not None:
            for index, cacher in enumerate(cachers):
                if isinstance(cacher, type):
                    cacher = cacher()
                    cachers[index] = cacher
                cacher.stage = name
                output_name = str(outputs[index])
                if not definition.is_aggregate or (
                    cacher.name is None and cacher.path_override is None
                ):
                    cacher.name = output_name
                cacher.set_record(record)
        record.stage_cachers = cachers
        return CallContext(
            definition=definition,
            record=record,
            args=args,
            kwargs=kwargs,
            records=records,
            outputs=outputs,
            cachers=cachers,
            function_inputs=function_inputs,
            position=len(record.stages) - 1,
        )

    def _record_inputs(
        self, definition: StageDefinition, record: Any, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        manager = self.manager
        inputs: dict[str, Any] = {}
        for input_name in definition.inputs:
            record.stage_inputs[-1].append(record.state_artifact_reps.get(input_name, -1))
            if input_name in record.state:
                inputs[input_name] = record.state.raw(input_name)
            elif manager.map_mode:
                continue
            elif definition.suppress_missing_inputs:
                logger.warning(
                    "Suppressed missing inputs, will expect function signature default value "
                    "for '%s' or a direct argument pass on the stage function call...",
                    input_name,
                )
            elif input_name not in kwargs:
                raise MissingInputError(
                    f"Stage '{definition.name}' input '{input_name}' not found in record state "
                    "and not passed to function call. Run a stage that outputs it first, pass "
                    f"{input_name}=... to the call, or set 'suppress_missing_inputs=True' on the "
                    "stage and give a default value in the function signature if this should run "
                    "anyway."
                )
        return inputs

    def _aggregate_inputs(
        self, definition: StageDefinition, record: Any, records: list[Any]
    ) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        for input_name in definition.inputs:
            per_record: dict[Any, Any] = {}
            for prev_record in records:
                if input_name not in prev_record.state_artifact_reps:
                    if not self.manager.map_mode:
                        logger.warning(
                            "Artifact '%s' not found in %s",
                            input_name,
                            prev_record.get_reference_name(),
                        )
                else:
                    record.stage_inputs[-1].append(prev_record.state_artifact_reps[input_name])
                if input_name in prev_record.state:
                    per_record[prev_record] = prev_record.state.raw(input_name)
            inputs[input_name] = per_record
        return inputs

    # ------------------------------------------------------------------ map

    def _map(self, context: CallContext) -> None:
        record = context.record
        for index, output in enumerate(context.outputs):
            cacher = context.cachers[index] if context.cachers is not None else None
            cached, metadata, problem, path = False, None, None, None
            if cacher is not None:
                path = cacher.get_path()
                if cacher.check():
                    problem = self._integrity_problem(cacher, full=False)
                    cached = problem is None
                    if cached:
                        metadata = cacher.load_metadata()
                    else:
                        problem = f"cached artifact corrupted: {problem}"
            artifact = MapArtifactRepresentation(
                record.get_record_index(), context.name, str(output), cached, metadata, cacher
            )
            artifact.path = path  # type: ignore[attr-defined]
            artifact.problem = problem  # type: ignore[attr-defined]
            artifact.code_change = self._code_change(context, metadata)  # type: ignore[attr-defined]
            self._register_artifact(record, output, artifact)
        record.mapped_calls.append(self._call_detail(context))

    def _code_change(self, context: CallContext, metadata: dict[str, Any] | None) -> str | None:
        """Why the stage's code differs from the one that wrote ``metadata`` (None: same/unknown)."""
        if metadata is None or getattr(self.manager, "code_changes", "rerun") == "ignore":
            return None
        current = fingerprint.definition_fingerprint(context.definition)
        return fingerprint.code_change(metadata, current)

    def _integrity_problem(self, cacher: Any, full: bool) -> str | None:
        """``cacher.integrity_problem``; a failure is re-checked under the artifact's shared lock,
        so an artifact another process is still publishing (sidecar not yet written) is judged
        once that process is done, not recomputed with a spurious warning."""
        problem = cacher.integrity_problem(full=full)
        if problem is None or problem == "artifact missing":
            return problem
        with artifact_lock(self.manager.manager_cache_path, [cacher.get_path()], exclusive=False):
            return cacher.integrity_problem(full=full)

    def _call_detail(self, context: CallContext) -> CallDetail:
        """What a worker needs to run this call by reference (see executors)."""
        record = context.record
        definition = context.definition
        inputs: dict[str, Any] = {}
        input_records: list[int] = []
        if definition.is_aggregate:
            input_records = [r.get_record_index() for r in context.records or []]
            for name in definition.inputs:
                inputs[name] = [
                    (r.get_record_index(), r.state_artifact_reps[name])
                    for r in context.records or []
                    if name in r.state_artifact_reps
                ]
        else:
            for name in definition.inputs:
                if name in record.state_artifact_reps and name not in context.kwargs:
                    inputs[name] = record.state_artifact_reps[name]
        return CallDetail(
            definition=definition,
            args=context.args,
            kwargs=context.kwargs,
            inputs=inputs,
            input_records=input_records,
            prior_stages=list(record.stages[:-1]),
        )

    def _register_artifact(self, record: Any, output: Any, artifact: Any) -> None:
        artifacts = self.manager.artifacts
        record.stage_outputs[-1].append(len(artifacts))
        record.state_artifact_reps[str(output)] = len(artifacts)
        artifacts.append(artifact)

    # ------------------------------------------------------------------ decide

    def _decide(self, context: CallContext) -> Decision:
        manager = self.manager
        if self.forced_decision is not None:
            return self.forced_decision
        key = (context.record.get_record_index(), context.position)
        if key in self.scheduled:
            return self._scheduled_decision(context, self.scheduled[key])
        dag = getattr(manager, "map", None)
        if dag is not None and dag.plan is not None:
            decision = dag.plan.decision_for(context.record.get_record_index(), context.position)
            if decision is not None:
                logger.debug("Planned %s: %s", decision.action.value, decision.reason)
                return decision
            logger.warning(
                "Stage %s of %s was not seen when the experiment was mapped (does run() behave "
                "differently on its second call?); checking the cache directly",
                context.name,
                context.record.get_reference_name(),
            )
        if context.cachers is None:
            return Decision(Action.COMPUTE, "no cacher")
        if context.name in manager.overwrite_stages or manager.overwrite:
            return Decision(Action.OVERWRITE, "overwrite requested", forced=True)
        return Decision(Action.COMPUTE, "check cache")

    def _scheduled_decision(self, context: CallContext, outcome: Any) -> Decision:
        """A call an executor ran: its outputs are on disk, or it failed."""
        from .errors import ExecutionError

        if outcome.failed:
            detail = outcome.error.strip().splitlines()[-1] if outcome.error else ""
            raise ExecutionError(
                f"stage '{context.name}' of {context.record.get_reference_name()} "
                + ("failed" if outcome.state.value == "failed" else "was not run")
                + (f": {detail}" if detail else "")
            )
        return Decision(Action.SKIP, f"computed by the {outcome.executor} executor")

    def _written_earlier_this_run(self, context: CallContext) -> bool:
        if not context.cachers or not self.written_this_run:
            return False
        return all(cacher.get_path() in self.written_this_run for cacher in context.cachers)

    # ------------------------------------------------------------------ skip / load

    def _skip(self, context: CallContext) -> None:
        """Leave outputs on disk: lazy handles for cached ones, SkippedOutput for the rest."""
        record = context.record
        logger.debug("DAG-indicated stage skip '%s'.", context.name)
        for index, output in enumerate(context.outputs):
            cacher = context.cachers[index] if context.cachers is not None else None
            value: Any = None
            metadata = None
            if cacher is not None and cacher.check():
                try:
                    metadata = cacher.load_metadata()
                except (OSError, ValueError):  # damaged sidecar: never loaded unverified
                    metadata = None
                handle = output if isinstance(output, Lazy) else CachedValue(str(output))
                value = handle.bind(cacher)
            artifact = ArtifactRepresentation(record, output, None, metadata=metadata, cacher=cacher)
            carried = self._carried_path(context, str(output)) if value is None else None
            if value is not None and cacher is not None:
                artifact.file = cacher.get_path()
            elif carried is not None:
                value = CarriedValue(str(output), carried)
            else:
                value = SkippedOutput(record, context.name, artifact)
            artifact.action = "skipped"
            self._register_artifact(record, output, artifact)
            record.state[str(output)] = value
        self.manager.restore_cached_reportables(context)
        record.store_tracked_paths()

    def _carried_path(self, context: CallContext, output: str) -> str | None:
        outcome = self.scheduled.get((context.record.get_record_index(), context.position))
        if outcome is None:
            return None
        return outcome.carried.get(output)

    def _load(self, context: CallContext) -> bool:
        """Load every cached output into state; ``False`` if any is unusable (then compute)."""
        cachers = context.cachers
        if not cachers:
            return False
        record = context.record
        for cacher in cachers:
            problem = self._integrity_problem(cacher, full=True) if cacher.check() else "missing"
            if problem is not None:
                if problem != "missing":
                    warnings.warn(
                        f"stage '{context.name}': cached artifact {cacher.get_path()} failed its "
                        f"integrity check ({problem}); recomputing it",
                        CacheIntegrityWarning,
                        stacklevel=4,
                    )
                return False
        if self._changed_in_live_mode(context):
            return False
        values = []
        for output, cacher in zip(context.outputs, cachers, strict=True):
            cacher.load_metadata()
            value = output.bind(cacher) if isinstance(output, Lazy) else cacher.load()
            values.append(value)
            record.state[str(output)] = value
            artifact = ArtifactRepresentation(
                record, output, value, metadata=cacher.metadata, cacher=cacher
            )
            artifact.file = cacher.get_path()
            artifact.action = "loaded"
            self._register_artifact(record, output, artifact)
        record.output = values[0] if len(values) == 1 else tuple(values)
        logger.info("Stage %s loaded from cache", context.name)
        self.manager.restore_cached_reportables(context)
        record.store_tracked_paths()
        return True

    def _changed_in_live_mode(self, context: CallContext) -> bool:
        """Without a plan (``--no-dag``, notebooks), check the code fingerprint here."""
        dag = getattr(self.manager, "map", None)
        if self.forced_decision is not None or (dag is not None and dag.plan is not None):
            return False  # the map pass already compared it
        if getattr(self.manager, "code_changes", "rerun") == "ignore":
            return False
        for cacher in context.cachers or []:
            change = self._code_change(context, cacher.load_metadata())
            if change is None:
                continue
            if getattr(self.manager, "code_changes", "rerun") == "rerun":
                logger.info("Stage %s: %s; recomputing", context.name, change)
                return True
            logger.warning("Stage %s: %s; loading the cached artifact anyway (code_changes="
                           "warn)", context.name, change)
            return False
        return False

    # ------------------------------------------------------------------ compute

    def _resolve_inputs(self, context: CallContext) -> dict[str, Any]:
        def resolve(input_name: str, value: Any) -> Any:
            if isinstance(value, SkippedOutput):
                raise ExecutingWithSkippedInputError(
                    f"Stage '{context.name}' needs input '{input_name}', but the stage that makes "
                    f"it ('{value.stage_name}') was skipped and it is not cached. Run with "
                    "--no-dag, or give that stage a cacher."
                )
            if isinstance(value, Lazy) and value.resolve:
                logger.debug("Resolving lazy load object '%s'", input_name)
                return value.load()
            return value

        resolved: dict[str, Any] = {}
        for input_name, value in context.function_inputs.items():
            if context.definition.is_aggregate and input_name in context.definition.inputs:
                resolved[input_name] = {r: resolve(input_name, v) for r, v in value.items()}
            else:
                resolved[input_name] = resolve(input_name, value)
        return resolved

    def add_unreplayed_outcomes(self, outcomes: list[Any], dag: Any = None) -> None:
        """Log the calls the replay never reached (it stops at the first failed call)."""
        logged = {(c["record_index"], c["position"]) for c in self.calls}
        scheduled = {outcome.key for outcome in outcomes}
        for call in dag.calls if dag is not None and dag.plan is not None else []:
            if call.key in logged or call.key in scheduled:
                continue
            decision = dag.plan.decisions[call.key]
            self.calls.append(
                {
                    "record_index": call.record_index,
                    "record": call.record_name,
                    "position": call.position,
                    "stage": call.stage_name,
                    "action": "skipped",
                    "seconds": 0.0,
                    "reason": f"{decision.reason} (the replay stopped before this call)",
                }
            )
        for outcome in outcomes:
            if outcome.key in logged:
                continue
            state = outcome.state.value
            reason = (outcome.error or "").strip() if state == "failed" else (outcome.error or "")
            self.calls.append(
                {
                    "record_index": outcome.key[0],
                    "record": outcome.record,
                    "position": outcome.key[1],
                    "stage": outcome.stage,
                    "action": state if state in ("failed", "upstream_failed") else "computed",
                    "seconds": outcome.seconds,
                    "reason": reason,
                }
            )

    def _log_call(
        self, context: CallContext, action: str, seconds: float, reason: str = ""
    ) -> None:
        self.calls.append(
            {
                "record_index": context.record.get_record_index(),
                "record": context.record.get_reference_name(),
                "position": context.position,
                "stage": context.name,
                "action": action,
                "seconds": seconds,
                "reason": reason,
            }
        )

    def _compute(self, context: CallContext, reason: str = "") -> None:
        record = context.record
        manager = self.manager
        inputs = self._resolve_inputs(context)
        self._check_call_signature(context, inputs)
        logger.info("Stage %s executing...", context.name)
        started = time.perf_counter()
        faults.checkpoint("stage.start")
        try:
            returned = self._call_with_retries(context, inputs)
        except BaseException:
            if self.failed_call is None:
                self.failed_call = (context.name, record.get_reference_name())
            self._log_call(context, "failed", time.perf_counter() - started, reason)
            raise
        elapsed = time.perf_counter() - started
        faults.checkpoint("stage.end")
        del inputs
        self._log_call(context, "computed", elapsed, reason)
        self._store_outputs(context, returned)
        manager.store_reportables(context)
        record.store_tracked_paths()
        logger.info("Stage %s complete", context.name)

    def _check_call_signature(self, context: CallContext, inputs: dict[str, Any]) -> None:
        """Name the stage and the fix when its function cannot take what it is given."""
        definition = context.definition
        try:
            signature = inspect.signature(definition.function)
        except (TypeError, ValueError):
            return
        leading = (context.record, context.records) if definition.is_aggregate else (
            context.record, *context.args
        )
        try:
            signature.bind(*leading, **inputs)
        except TypeError as exc:
            raise InputSignatureError(
                f"stage '{context.name}' cannot be called with its declared inputs "
                f"{list(definition.inputs)}: {exc}; declare every parameter of "
                f"{context.name}() after record in inputs=[...], give it a default value, or "
                "pass it when calling the stage"
            ) from exc

    def _call_with_retries(self, context: CallContext, inputs: dict[str, Any]) -> Any:
        """Run the stage body, retrying exceptions in ``retry_on`` and enforcing ``timeout``."""
        definition = context.definition
        retries = definition.retries if self.retries_override is None else self.retries_override
        timeout = definition.timeout if self.timeout_override is None else self.timeout_override
        attempt = 0
        while True:
            try:
                with deadline(timeout, f"stage '{context.name}'"):
                    if definition.is_aggregate:
                        return definition.function(context.record, context.records, **inputs)
                    return definition.function(context.record, *context.args, **inputs)
            except definition.retry_on as exc:
                if attempt >= retries:
                    raise
                attempt += 1
                logger.warning(
                    "Stage %s failed (%s: %s); retry %d of %d",
                    context.name,
                    type(exc).__name__,
                    exc,
                    attempt,
                    retries,
                )

    def _store_outputs(self, context: CallContext, returned: Any) -> None:
        record = context.record
        manager = self.manager
        outputs = context.outputs
        if not outputs:
            record.output = returned
            return
        values = returned if isinstance(returned, tuple) else (returned,)
        if len(values) != len(outputs):
            raise OutputSignatureError(
                f"Returned values from '{context.name}' do not match expected stage outputs. "
                f"The function should return values for {outputs} (it returned "
                f"{len(values)} value{'s' if len(values) != 1 else ''}); return one value per "
                "output, as a tuple when there are several"
            )
        writing = context.cachers is not None and not manager.dry and not manager.dry_cache
        if context.cachers is not None:
            logger.info("Stage %s caching outputs...", context.name)
        kept = []
        for index, (output, value) in enumerate(zip(outputs, values, strict=True)):
            artifact = ArtifactRepresentation(record, output, value)
            cacher = context.cachers[index] if context.cachers is not None else None
            if writing and cacher is not None:
                with artifact_lock(manager.manager_cache_path, [cacher.get_path()], exclusive=True):
                    self._save(context, cacher, output, value)
                    artifact.file = cacher.get_path()
                    artifact.cacher = cacher
                    cacher.collect_metadata()
                    cacher.metadata["preview"] = artifact.string
                    cacher.metadata.update(
                        fingerprint.definition_fingerprint(context.definition).sidecar_fields()
                    )
                    artifact.metadata = cacher.save_metadata()
                self.written_this_run.add(cacher.get_path())
            lazy_kept = isinstance(output, Lazy) and cacher is not None and writing
            state_value = output.bind(cacher) if lazy_kept else value
            record.state[str(output)] = state_value
            kept.append(state_value)
            artifact.action = "computed"
            self._register_artifact(record, output, artifact)
        record.output = kept[0] if len(kept) == 1 else tuple(kept)

    def _save(self, context: CallContext, cacher: Any, output: Any, value: Any) -> None:
        try:
            faults.checkpoint("artifact.write")
            cacher.save(value)
            faults.checkpoint("artifact.written")
        except AssertionError:
            raise  # a cacher's own contract check (e.g. PathRef's path) speaks for itself
        except Exception as exc:
            try:
                path = cacher.get_path()
            except Exception:  # a broken cacher may not even give a path
                path = "?"
            if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRORS:
                fix = (
                    "free some disk space, or make the cache folder writable (or point "
                    "cache_path in curifactory_config.json elsewhere), then run again"
                )
            else:
                fix = (
                    f"use a cacher that can serialise a {type(value).__name__} "
                    "(e.g. PickleCacher), or fix the cacher"
                )
            raise CacheWriteError(
                f"stage '{context.name}' of {context.record.get_reference_name()}: "
                f"{type(cacher).__name__} could not write output '{output}' to {path} "
                f"({type(exc).__name__}: {exc}); {fix}"
            ) from exc
