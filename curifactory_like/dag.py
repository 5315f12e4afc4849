"""The stage DAG of a mapped run: records, their stage calls, and the artifacts between them.

``ArtifactManager.map_records()`` turns what the map pass recorded into a ``DAG``;
``analyze()`` links every stage call to the calls producing its inputs and asks ``plan`` what
each call must do. The method names (``records``, ``artifacts``, ``execution_list``,
``child_records``, ``is_leaf``, ``is_output_used_anywhere``, ``determine_execution_list``) are
curifactory's.
"""

from __future__ import annotations

import logging
from typing import Any

from .errors import MissingInputError
from .plan import Plan, StageCall, plan_calls

logger = logging.getLogger("curifactory_like.dag")


class DAG:
    """The mapped experiment: records, artifacts, stage calls and the plan over them."""

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.artifacts: list[Any] = []
        """``MapArtifactRepresentation`` per artifact; ``.cached`` feeds the plan."""
        self.calls: list[StageCall] = []
        self.plan: Plan | None = None
        self.execution_list: list[tuple[int, str]] = []
        """``(record index, stage name)`` of every call that executes (curifactory's form)."""
        self.releases: dict[tuple[int, int], list[tuple[int, str, int]]] = {}
        """After call ``(record index, position)``: the outputs ``(record index, name, producer
        position)`` no later call reads (see ``last_readers``)."""

    # ------------------------------------------------------------------ building

    def analyze(self) -> None:
        """Build the stage calls and their links, then plan them."""
        self.build_calls()
        self.determine_execution_list()
        self.releases = self.last_readers()

    def last_readers(self) -> dict[tuple[int, int], list[tuple[int, str, int]]]:
        """For every cached output, the call after which nothing in ``run()`` reads it again.

        Keyed by that last reading call ``(record index, position)`` (the producing call itself
        when nothing reads the output), in ``run()``'s order as the map pass saw it. Empty when
        that order is unknown (a call without its map-pass sequence).
        """
        producer: dict[int, tuple[int, int]] = {}
        last: dict[int, tuple[int, tuple[int, int]]] = {}
        for call in self.calls:
            sequence = call.detail.sequence if call.detail is not None else None
            if sequence is None:
                return {}
            key = (call.record_index, call.position)
            for artifact_index in call.output_artifacts:
                producer[artifact_index] = key
                last.setdefault(artifact_index, (sequence, key))
            for artifact_index in call.input_artifacts:
                if artifact_index not in last or last[artifact_index][0] < sequence:
                    last[artifact_index] = (sequence, key)
        releases: dict[tuple[int, int], list[tuple[int, str, int]]] = {}
        for artifact_index, (record_index, position) in producer.items():
            artifact = self.artifacts[artifact_index]
            if artifact.cacher is None:
                continue
            reader = last[artifact_index][1]
            releases.setdefault(reader, []).append((record_index, str(artifact.name), position))
        return releases

    def build_calls(self) -> None:
        """One ``StageCall`` per stage of every record, linked through the artifacts."""
        self.calls = []
        producer_of: dict[int, int] = {}
        for record_index, record in enumerate(self.records):
            for position, stage_name in enumerate(record.stages):
                inputs = []
                for literal_index, artifact_index in enumerate(record.stage_inputs[position]):
                    if artifact_index != -1:
                        inputs.append(artifact_index)
                        continue
                    input_name = record.stage_inputs_names[position][literal_index]
                    if record.stage_suppress_missing[position] or input_name in (
                        record.stage_kwargs_keys[position]
                    ):
                        continue
                    raise MissingInputError(
                        f"Stage '{stage_name}' input '{input_name}' not found in record state "
                        f"and not passed to function call ({record.get_reference_name(True)}). "
                        "Run a stage that outputs it first, pass it to the stage call, or set "
                        "'suppress_missing_inputs=True' on the stage and give a default value "
                        "in the function signature."
                    )
                outputs = list(record.stage_outputs[position])
                call = StageCall(
                    call_id=len(self.calls),
                    record_index=record_index,
                    position=position,
                    stage_name=stage_name,
                    is_aggregate=record.is_aggregate and position == 0,
                    record_hash=record.get_hash(),
                    record_name=record.get_reference_name(True),
                    input_artifacts=inputs,
                    output_artifacts=outputs,
                    has_cachers=any(self.artifacts[a].cacher is not None for a in outputs),
                    detail=(
                        record.mapped_calls[position]
                        if position < len(getattr(record, "mapped_calls", []))
                        else None
                    ),
                )
                for artifact_index in outputs:
                    producer_of[artifact_index] = call.call_id
                self.calls.append(call)
        for call in self.calls:
            for artifact_index in call.input_artifacts:
                producer = producer_of.get(artifact_index)
                if producer is not None and producer != call.call_id:
                    if producer not in call.producers:
                        call.producers.append(producer)
                    consumers = self.calls[producer].consumers
                    if call.call_id not in consumers:
                        consumers.append(call.call_id)

    def _overwrite_reason(self, call: StageCall) -> str | None:
        record = self.records[call.record_index]
        manager = record.manager
        if call.stage_name in manager.overwrite_stages:
            return f"overwrite requested for stage {call.stage_name} (--overwrite-stage)"
        if manager.overwrite:
            return "overwrite requested (manager.overwrite)"
        if record.params is not None and record.params.overwrite:
            return f"overwrite requested for parameter set {record.params.name} (--overwrite)"
        if record.params is None and any(
            r.params is not None and r.params.overwrite for r in record.input_records
        ):
            return "overwrite requested for an input record of this aggregate (--overwrite)"
        return None

    def determine_execution_list(self) -> None:
        """Plan every call from the artifacts' ``cached`` flags and the overwrite settings."""
        if not self.calls and any(r.stages for r in self.records):
            self.build_calls()
        for call in self.calls:
            call.overwrite_reason = self._overwrite_reason(call)
            call.code_change = next(
                (
                    self.artifacts[a].code_change
                    for a in call.output_artifacts
                    if getattr(self.artifacts[a], "code_change", None)
                ),
                None,
            )
        policy = "rerun"
        if self.records:
            policy = getattr(self.records[0].manager, "code_changes", "rerun")
        cached = {index: bool(artifact.cached) for index, artifact in enumerate(self.artifacts)}
        labels = {
            index: getattr(artifact, "problem", None)
            or getattr(artifact, "path", None)
            or f"{artifact.name} of {artifact.stage_name}"
            for index, artifact in enumerate(self.artifacts)
        }
        self.plan = plan_calls(self.calls, cached, labels, policy)
        if policy == "warn":
            changed: dict[tuple[str, str], int] = {}
            for call in self.calls:
                if call.code_change is not None:
                    key = (call.stage_name, call.code_change)
                    changed[key] = changed.get(key, 0) + 1
            for (stage_name, change), count in changed.items():
                logger.warning("Stage %s: %s since %d cached call(s); keeping their artifacts "
                               "(code_changes=warn)", stage_name, change, count)
        self.execution_list = self.plan.execution_list

    # ------------------------------------------------------------------ queries

    def child_records(self, record: Any) -> list[Any]:
        """Records that take ``record`` as an input (copies and aggregates)."""
        return [other for other in self.records if record in other.input_records]

    def is_output_used_anywhere(self, record: Any, stage_search_start_index: int, output: str) -> bool:
        """Whether an output named ``output`` is read by a later stage of the record or a child."""
        for position in range(stage_search_start_index, len(record.stages)):
            for artifact_index in record.stage_inputs[position]:
                if artifact_index != -1 and self.artifacts[artifact_index].name == output:
                    return True
        return any(
            self.is_output_used_anywhere(child, 0, output) for child in self.child_records(record)
        )

    def is_leaf(self, record: Any, stage_name: str) -> bool:
        """A stage is a leaf when it has no outputs or none of them is read afterwards."""
        position = record.stages.index(stage_name)
        outputs = record.stage_outputs[position]
        if not outputs:
            return True
        return not any(
            self.is_output_used_anywhere(record, position + 1, self.artifacts[index].name)
            for index in outputs
        )

    def find_leaves(self) -> list[tuple[int, str]]:
        """``(record index, stage name)`` of every leaf stage."""
        return [
            (index, stage)
            for index, record in enumerate(self.records)
            for stage in record.stages
            if self.is_leaf(record, stage)
        ]

    def get_record_string(self, record_index: int) -> str:
        """A one-line description of a mapped record."""
        record = self.records[record_index]
        name = record.params.name if record.params is not None else "None"
        kind = " (aggregate)" if record.is_aggregate else ""
        return f"Record {record_index}{kind}, params: {name}, hash: {record.get_hash()[:8]}"

    def print_experiment_map(self) -> None:
        """Print the mapped calls with their planned actions (see ``experiment map``)."""
        from .cli.render import print_dag

        print_dag(self)
