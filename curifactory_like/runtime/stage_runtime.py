"""``StageRuntime``: the entry point of every stage call (see the package docstring)."""

from __future__ import annotations

import logging
from typing import Any

from .. import utils
from ..plan import Action
from ..stage import StageDefinition
from .computing import ComputingMixin
from .deciding import DecidingMixin
from .loading import LoadingMixin
from .preparation import PreparationMixin
from .releasing import ReleasingMixin

logger = logging.getLogger("curifactory_like.runtime")


class StageRuntime(
    PreparationMixin, DecidingMixin, LoadingMixin, ComputingMixin, ReleasingMixin
):
    """Interprets stage calls for one ArtifactManager."""

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
            self._release_consumed(record.get_record_index(), context.position)
            return record
        finally:
            manager.stage_active = False
            record.stage_cachers = None
            utils.set_logging_prefix("")
            manager.update_map_progress(record, "continue")

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
