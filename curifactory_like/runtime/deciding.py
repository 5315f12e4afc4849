"""Deciding what a stage call does: the map pass (record the call and its cache status for the
plan) and, when executing, the call's ``Decision`` (planned, scheduled on an executor, or live)."""

from __future__ import annotations

import logging
from typing import Any

from ..plan import Action, CallDetail, Decision
from ..record import MapArtifactRepresentation
from .base import StageRuntimeBase
from .call_context import CallContext

logger = logging.getLogger("curifactory_like.runtime")


class DecidingMixin(StageRuntimeBase):
    """The map pass and the executed pass's decision lookup."""

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
        self.mapped_call_count += 1
        return CallDetail(
            definition=definition,
            args=context.args,
            kwargs=context.kwargs,
            inputs=inputs,
            input_records=input_records,
            prior_stages=list(record.stages[:-1]),
            sequence=self.mapped_call_count,
        )

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
        from ..errors import ExecutionError

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
