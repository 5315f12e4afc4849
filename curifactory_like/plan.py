"""The plan: for every stage call, what to do (compute, load, skip, overwrite) and why.

Rules, applied until nothing changes (each rule only ever turns a call into a computing one):

1. A call whose cache is overwritten (``--overwrite``, ``--overwrite-stage``, a parameter set's
   ``overwrite``) computes; so does a call whose code changed since its outputs were cached
   (``code_change``), under the ``rerun`` policy (see fingerprint.py).
2. A call that is *needed* computes when its outputs are not all cached. A call is needed when
   it is a leaf (nothing consumes its outputs) or a computing call consumes one of its outputs.
3. A call consuming an output that is produced afresh in this run computes too ("upstream
   recomputed"). An output is fresh when its call computes and either caches it (a new
   artifact) or was itself fed fresh inputs; a cacher-less stage that only reruns to supply a
   value does not invalidate what was cached downstream of it.

Everything else is loaded (a computing call reads it) or skipped (nobody needs it; a cached
output stays on disk, reachable through a lazy handle).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Action(enum.Enum):
    """What the executor does with one stage call."""

    COMPUTE = "compute"  # run the stage body and cache its outputs
    OVERWRITE = "overwrite"  # run the stage body although its outputs are cached (asked to)
    LOAD = "load"  # read the cached outputs: a computing stage needs them
    SKIP = "skip"  # do nothing now: no computing stage needs the outputs

    @property
    def executes(self) -> bool:
        return self in (Action.COMPUTE, Action.OVERWRITE)


@dataclass
class CallDetail:
    """How a stage was called in the map pass: enough to run it again by reference."""

    definition: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inputs: dict[str, Any]
    """Input name -> artifact index (stage) or [(record index, artifact index)] (aggregate)."""
    input_records: list[int]
    """Record indices an aggregate runs over."""
    prior_stages: list[str]
    sequence: int | None = None
    """Order of the call in the map pass (``run()``'s order across records)."""


@dataclass
class StageCall:
    """One stage applied to one record, as seen in the map pass."""

    call_id: int
    record_index: int
    position: int
    """Index of this call in the record's ``stages`` list."""
    stage_name: str
    is_aggregate: bool
    record_hash: str
    record_name: str
    input_artifacts: list[int]
    output_artifacts: list[int]
    has_cachers: bool
    overwrite_reason: str | None = None
    code_change: str | None = None
    """Why the stage's code differs from the code that wrote its cached outputs, if it does."""
    producers: list[int] = field(default_factory=list)
    consumers: list[int] = field(default_factory=list)
    detail: CallDetail | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.record_index, self.position)


@dataclass
class Decision:
    """The action chosen for a stage call and the human-readable reason for it."""

    action: Action
    reason: str
    forced: bool = False
    """True when the stage must run even if its outputs exist (overwrite, upstream recomputed)."""
    kind: str = ""
    """The reason as a keyword (see ``REASON_KINDS``)."""


REASON_KINDS = {
    "missing": "artifact missing",
    "parameter_changed": "parameter changed",
    "upstream": "upstream artifact recomputed",
    "code_changed": "stage code changed",
    "overwrite": "overwrite requested",
    "corrupted": "cached artifact corrupted",
    "no_cacher": "no cacher",
    "no_outputs": "no outputs",
    "cached": "cached",
    "not_needed": "not needed",
}
"""Reason keywords of decisions and their headings."""


@dataclass
class Plan:
    """Decisions for every stage call, keyed by ``(record index, position in the record)``."""

    calls: list[StageCall]
    decisions: dict[tuple[int, int], Decision]

    def decision_for(self, record_index: int, position: int) -> Decision | None:
        return self.decisions.get((record_index, position))

    def totals(self) -> dict[str, int]:
        counts = {action.value: 0 for action in Action}
        for decision in self.decisions.values():
            counts[decision.action.value] += 1
        return counts

    @property
    def execution_list(self) -> list[tuple[int, str]]:
        return [
            (call.record_index, call.stage_name)
            for call in self.calls
            if self.decisions[call.key].action.executes
        ]


def plan_calls(
    calls: list[StageCall],
    cached: dict[int, bool],
    artifact_labels: dict[int, str],
    code_changes: str = "rerun",
) -> Plan:
    """Decide every call. ``cached[a]`` says whether artifact ``a`` is usable from the cache.

    ``code_changes`` is the policy for calls whose ``code_change`` is set: ``rerun`` computes
    them (and what depends on them), ``warn`` keeps their cache and says so in the reason,
    ``ignore`` keeps it silently.
    """
    by_id = {call.call_id: call for call in calls}
    computing: dict[int, str] = {}
    kinds: dict[int, str] = {}
    forced: set[int] = set()
    for call in calls:
        if call.overwrite_reason is not None:
            computing[call.call_id] = call.overwrite_reason
            kinds[call.call_id] = "overwrite"
            forced.add(call.call_id)
        elif call.code_change is not None and code_changes == "rerun":
            computing[call.call_id] = call.code_change
            kinds[call.call_id] = "code_changed"
            forced.add(call.call_id)

    changed = True
    while changed:
        changed = False
        for call in reversed(calls):  # rule 2, consumers before producers
            if call.call_id in computing:
                continue
            needing = [c for c in call.consumers if c in computing]
            if call.consumers and not needing:
                continue
            missing = [a for a in call.output_artifacts if not cached.get(a, False)]
            if call.output_artifacts and not missing:
                continue
            if not call.has_cachers and call.output_artifacts:
                reason = "no cacher: its outputs are computed whenever they are needed"
                kinds[call.call_id] = "no_cacher"
            elif not call.output_artifacts:
                reason = "no outputs: a stage without outputs runs every time it is reached"
                kinds[call.call_id] = "no_outputs"
            else:
                label = str(artifact_labels.get(missing[0], missing[0]))
                corrupted = label.startswith("cached artifact")
                reason = label if corrupted else f"artifact missing: {label}"
                kinds[call.call_id] = "corrupted" if corrupted else "missing"
            if needing:
                reason += f" (needed by {by_id[needing[0]].stage_name})"
            computing[call.call_id] = reason
            changed = True
        fresh: set[int] = set()
        for call in calls:  # rule 3, producers before consumers
            fresh_producers = [p for p in call.producers if p in fresh]
            if call.call_id in computing:
                if call.has_cachers or call.call_id in forced or fresh_producers:
                    fresh.add(call.call_id)
                continue
            if fresh_producers:
                producer = by_id[fresh_producers[0]]
                computing[call.call_id] = (
                    f"upstream artifact recomputed: stage {producer.stage_name} of "
                    f"{producer.record_name}"
                )
                kinds[call.call_id] = "upstream"
                forced.add(call.call_id)
                fresh.add(call.call_id)
                changed = True

    decisions: dict[tuple[int, int], Decision] = {}
    for call in calls:
        if call.call_id in computing:
            is_overwrite = call.overwrite_reason is not None
            decisions[call.key] = Decision(
                Action.OVERWRITE if is_overwrite else Action.COMPUTE,
                computing[call.call_id],
                forced=call.call_id in forced,
                kind=kinds.get(call.call_id, ""),
            )
            continue
        readers = [c for c in call.consumers if c in computing]
        if readers:
            decision = Decision(
                Action.LOAD, f"cached; read by {by_id[readers[0]].stage_name}", kind="cached"
            )
        elif all(cached.get(a, False) for a in call.output_artifacts):
            decision = Decision(Action.SKIP, "cached; no computing stage needs it", kind="cached")
        else:
            decision = Decision(Action.SKIP, "not needed by any computing stage", kind="not_needed")
        if call.code_change is not None and code_changes == "warn":
            decision.reason += f"; {call.code_change}, cache kept (code_changes=warn)"
        decisions[call.key] = decision
    return Plan(calls=calls, decisions=decisions)
