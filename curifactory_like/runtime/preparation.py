"""Preparing a stage call: cachers, lazy outputs, aggregate records and the call's inputs."""

from __future__ import annotations

import copy
import logging
from typing import Any

from ..caching.builtin import PickleCacher
from ..caching.lazy import Lazy
from ..errors import InputSignatureError, MissingInputError, OutputSignatureError
from ..stage import StageDefinition
from .base import StageRuntimeBase
from .call_context import CallContext

logger = logging.getLogger("curifactory_like.runtime")


class PreparationMixin(StageRuntimeBase):
    """Turns a stage call into a ``CallContext`` and records it on the record."""

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
        check = definition.signature_check
        missing = [] if check.accepts_var_keyword else list(check.missing)
        no_defaults = (
            []  # nothing is in state while mapping; checked when executing
            if manager.map_mode
            else [name for name in check.required if name not in function_inputs]
        )
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
