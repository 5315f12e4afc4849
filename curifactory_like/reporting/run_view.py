"""What a run report shows, gathered once from the manager: records, stage calls, artifacts.

The report never walks the manager's internals twice: :func:`build_run_view` reads them into
plain dataclasses that the stage graph (``dag_graph``) and the templates (``report``) share.

Two sources, merged:

* **the plan** (``manager.dag``, kept after ``manager.map`` is cleared): every stage call the
  map pass saw, with the planned action and reason, and the artifacts' cache paths;
* **what happened** (``manager.runtime.calls`` and the executed ``manager.records`` /
  ``manager.artifacts``): the action taken, seconds, previews, sizes.

Without a DAG (a live notebook session, ``--no-dag``, or a failure while mapping) the executed
records are the only source. A call that was planned but never reached (the run stopped
first) is ``notrun``.
"""

from __future__ import annotations

import enum
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from curifactory_like.reporting.render import RECORD_COLORS, record_color

__all__ = ["ArtifactView", "CallState", "CallView", "RecordView", "RunView", "build_run_view"]


class CallState(str, enum.Enum):
    """What a stage call did in this run, as the report shows it (also its CSS class)."""

    COMPUTED = "computed"  # the stage body ran (also when an overwrite was requested)
    LOADED = "loaded"  # the outputs were read from the cache
    SKIPPED = "skipped"  # nothing needed it; cached outputs were left on disk
    FAILED = "failed"  # the stage body raised
    NOT_RUN = "notrun"  # planned, never reached (the run stopped earlier or was only mapped)

    @property
    def label(self) -> str:
        return "not run" if self is CallState.NOT_RUN else self.value


_STATE_OF_ACTION = {
    "computed": CallState.COMPUTED,
    "overwritten": CallState.COMPUTED,
    "loaded": CallState.LOADED,
    "skipped": CallState.SKIPPED,
    "failed": CallState.FAILED,
    "upstream_failed": CallState.NOT_RUN,
}


# slots and texts derived on use: a run of a thousand records has ~8,000 of these views, built
# for the report only (~1 KB each as plain dataclasses with their shortened texts)
@dataclass(slots=True)
class ArtifactView:
    """One output of one stage call."""

    id: int
    """Index in the DAG's (or, without one, the manager's) artifact list; the graph node id."""
    name: str
    preview: str = ""
    path: str | None = None
    size: int | None = None
    path_prefix: str = ""
    """The record's path prefix (see ``RecordView.path_prefix``)."""

    @property
    def shown_path(self) -> str:
        """``path`` as the detail table shows it (shortened by the record's path prefix)."""
        path = self.path or ""
        if self.path_prefix and path.startswith(self.path_prefix):
            return "\u2026" + path[len(self.path_prefix) :]
        return path


@dataclass(slots=True)
class CallView:
    """One stage applied to one record."""

    record_index: int
    position: int
    stage: str
    state: CallState = CallState.NOT_RUN
    planned: str | None = None
    """The plan's action (compute, overwrite, load, skip), when the run was planned."""
    reason: str = ""
    seconds: float | None = None
    inputs: list[int] = field(default_factory=list)
    outputs: list[ArtifactView] = field(default_factory=list)
    path_prefix: str = ""
    """The record's path prefix (see ``RecordView.path_prefix``)."""

    @property
    def shown_reason(self) -> str:
        """``reason`` as the detail table shows it (shortened by the record's path prefix)."""
        return self.reason.replace(self.path_prefix, "\u2026") if self.path_prefix else self.reason

    @property
    def node_id(self) -> str:
        return f"c{self.record_index}_{self.position}"


@dataclass
class RecordView:
    """One record with its stage calls."""

    index: int
    name: str | None
    """The parameter set's name, ``None`` for a record without one."""
    hash: str
    is_aggregate: bool
    calls: list[CallView] = field(default_factory=list)
    input_records: list[int] = field(default_factory=list)
    path_prefix: str = ""
    """The start shared by the record's artifact paths, shown once instead of in every row."""

    @property
    def color(self) -> str:
        return record_color(self.index)

    @property
    def color_class(self) -> str:
        """CSS class of the record's colour swatch (``rc0`` ... ``rc8``)."""
        return f"rc{self.index % len(RECORD_COLORS)}"

    @property
    def title(self) -> str:
        kind = " (aggregate)" if self.is_aggregate else ""
        return f"Record {self.index}{kind}: {self.name if self.name is not None else 'None'}"

    def shorten_paths(self) -> None:
        """Set ``path_prefix`` here and in the calls and artifacts, which shorten their
        ``shown_reason`` / ``shown_path`` texts with it."""
        paths = [a.path for call in self.calls for a in call.outputs if a.path]
        prefix = ""
        if len(paths) > 1:
            common = os.path.commonprefix(paths)
            cut = max(common.rfind("_"), common.rfind("/"), common.rfind(os.sep))
            prefix = common[: cut + 1] if cut >= 11 else ""
        self.path_prefix = prefix
        for call in self.calls:
            call.path_prefix = prefix
            for artifact in call.outputs:
                artifact.path_prefix = prefix


@dataclass
class RunView:
    """Everything the report draws and lists about the run's stages."""

    records: list[RecordView]
    source: str
    """``"plan"`` (built from the analysed DAG) or ``"records"`` (executed records only)."""
    param_sets: list[Any]
    """The distinct parameter sets of the records, in record order."""

    @property
    def calls(self) -> list[CallView]:
        return [call for record in self.records for call in record.calls]

    @property
    def call_count(self) -> int:
        return sum(len(record.calls) for record in self.records)

    @property
    def artifact_count(self) -> int:
        return sum(len(call.outputs) for record in self.records for call in record.calls)

    def totals(self) -> dict[str, int]:
        """Number of calls per state, every state present (in ``CallState`` order)."""
        counts = Counter(call.state for call in self.calls)
        return {state.value: counts.get(state, 0) for state in CallState}

    def stage_summary(self) -> list[dict[str, Any]]:
        """Per stage name (first-seen order): calls per state and seconds spent computing."""
        summary: dict[tuple[str, bool], dict[str, Any]] = {}
        for record in self.records:
            for call in record.calls:
                key = (call.stage, record.is_aggregate)
                entry = summary.setdefault(
                    key,
                    {
                        "stage": call.stage,
                        "aggregate": record.is_aggregate,
                        "calls": 0,
                        "seconds": 0.0,
                        **{state.value: 0 for state in CallState},
                    },
                )
                entry["calls"] += 1
                entry[call.state.value] += 1
                entry["seconds"] += call.seconds or 0.0
        return list(summary.values())


def _artifact_details(representation: Any) -> tuple[str, str | None, int | None]:
    """Preview, path and size of an executed or mapped artifact representation."""
    if representation is None:
        return "", None, None
    metadata = getattr(representation, "metadata", None) or {}
    preview = metadata.get("preview") if isinstance(metadata, dict) else None
    if not preview and getattr(representation, "action", "") != "skipped":
        preview = getattr(representation, "string", None)
    path = getattr(representation, "file", None)
    if not path or path == "no file":
        path = getattr(representation, "path", None)
    size = metadata.get("artifact_size") if isinstance(metadata, dict) else None
    return str(preview or ""), (str(path) if path else None), size


def _executed_outputs(manager: Any, record_index: int, position: int, stage: str) -> list[Any]:
    """The executed artifact representations of one call, or ``[]`` if it did not run."""
    records = getattr(manager, "records", None) or []
    if record_index >= len(records):
        return []
    record = records[record_index]
    if position >= len(record.stages) or record.stages[position] != stage:
        return []
    artifacts = getattr(manager, "artifacts", None) or []
    return [artifacts[i] for i in record.stage_outputs[position] if 0 <= i < len(artifacts)]


def _record_name(record: Any) -> str | None:
    params = getattr(record, "params", None)
    return None if params is None else str(params.name)


_EXPECTED_ACTION = {"compute": "computed", "overwrite": "overwritten", "load": "loaded",
                    "skip": "skipped"}
"""What a call planned with each action logs when the run goes as planned."""


def build_run_view(manager: Any, expected: bool = False) -> RunView:
    """Read the manager's plan and execution log into a :class:`RunView`.

    With ``expected``, every planned call is shown as its plan says it will end, whatever has
    run so far (what the report will show if the run goes as planned; see ``graph_prefetch``).
    """
    dag = getattr(manager, "dag", None) or getattr(manager, "map", None)
    if dag is not None and dag.records:
        source = "plan"
        records, artifacts = list(dag.records), list(dag.artifacts)
        plan = getattr(dag, "plan", None)
    else:
        source = "records"
        records = list(getattr(manager, "records", []))
        artifacts = list(getattr(manager, "artifacts", []))
        plan = None
    decisions = plan.decisions if plan is not None else {}
    runtime = getattr(manager, "runtime", None)
    executed = {
        (entry["record_index"], entry["position"]): entry
        for entry in (getattr(runtime, "calls", None) or [])
    }
    if expected:
        executed = {
            key: {"stage": records[key[0]].stages[key[1]],
                  "action": _EXPECTED_ACTION[decision.action.value]}
            for key, decision in decisions.items()
            if key[0] < len(records) and key[1] < len(records[key[0]].stages)
        }
    index_of = {id(record): index for index, record in enumerate(records)}

    views: list[RecordView] = []
    param_sets: list[Any] = []
    seen_hashes: set[str] = set()
    for record_index, record in enumerate(records):
        params = getattr(record, "params", None)
        if params is not None and params.hash not in seen_hashes:
            seen_hashes.add(params.hash)
            param_sets.append(params)
        view = RecordView(
            index=record_index,
            name=_record_name(record),
            hash=str(record.get_hash()),
            is_aggregate=bool(record.is_aggregate),
            input_records=[
                index_of[id(r)] for r in getattr(record, "input_records", []) if id(r) in index_of
            ],
        )
        for position, stage in enumerate(record.stages):
            call = CallView(record_index=record_index, position=position, stage=str(stage))
            call.inputs = [i for i in record.stage_inputs[position] if i != -1]
            decision = decisions.get((record_index, position))
            if decision is not None:
                call.planned = decision.action.value
                call.reason = decision.reason
            entry = executed.get((record_index, position))
            if entry is not None and entry.get("stage") == stage:
                call.state = _STATE_OF_ACTION.get(entry["action"], CallState.COMPUTED)
                call.seconds = entry.get("seconds")
                call.reason = entry.get("reason") or call.reason
            ran = (
                _executed_outputs(manager, record_index, position, stage)
                if source == "plan"
                else []
            )
            for offset, artifact_index in enumerate(record.stage_outputs[position]):
                planned_rep = artifacts[artifact_index] if artifact_index < len(artifacts) else None
                rep = ran[offset] if offset < len(ran) else planned_rep
                preview, path, size = _artifact_details(rep)
                if path is None or size is None:
                    _, planned_path, planned_size = _artifact_details(planned_rep)
                    path = path or planned_path
                    size = size if size is not None else planned_size
                name = getattr(rep, "name", None) or getattr(planned_rep, "name", "?")
                call.outputs.append(ArtifactView(artifact_index, str(name), preview, path, size))
            if entry is None and source == "records":
                call.state = _state_from_artifacts(record, position, artifacts)
            view.calls.append(call)
        view.shorten_paths()
        views.append(view)
    return RunView(records=views, source=source, param_sets=param_sets)


def _state_from_artifacts(record: Any, position: int, artifacts: list[Any]) -> CallState:
    """Best guess for a call that left no execution log entry (executed records only)."""
    actions = {
        getattr(artifacts[i], "action", None)
        for i in record.stage_outputs[position]
        if i < len(artifacts)
    }
    actions.discard(None)
    if len(actions) == 1:
        return _STATE_OF_ACTION.get(str(actions.pop()), CallState.NOT_RUN)
    return CallState.NOT_RUN
