"""The explained plan: every stage call's action and reason, with the registry's context.

``plan.plan_calls`` decides what each call does from the cache alone. ``explain_plan`` adds what
only the run registry knows: which parameter changed (field, old and new value) when a
parameter set's artifacts are missing because its hash changed, an estimate of the run time
from the durations recorded for the same stages, and, with ``against``, how the plan compares
with an earlier run (what that run did with each call, which parameters and which stage code
differ since). ``experiment plan`` prints it and the HTML run report shows it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import fingerprint, hashing
from .errors import RunReferenceError
from .plan import REASON_KINDS, Action


@dataclass
class CallExplanation:
    """One stage call in the explained plan."""

    record: str
    record_index: int
    param_set: str | None
    param_hash: str
    stage: str
    position: int
    action: str
    kind: str
    """The reason as a keyword: missing, parameter_changed, upstream, code_changed, ..."""
    reason: str
    artifacts: list[str] = field(default_factory=list)
    """Cache paths of the call's outputs (where it has cachers)."""
    parameter_changes: list[dict[str, Any]] = field(default_factory=list)
    """``{"field", "old", "new"}`` per changed parameter (kind ``parameter_changed``)."""
    code: str = "not cached"
    """Code state of the cached outputs: same, changed, unknown (cached before fingerprints)."""
    estimate_seconds: float | None = None
    """Expected seconds when the call executes, from recorded durations (None: no history)."""
    against: dict[str, Any] | None = None
    """With ``--against``: what that run did with this call and what changed since."""


@dataclass
class PlanExplanation:
    """The explained plan of one experiment selection."""

    experiment: str
    code_changes: str
    calls: list[CallExplanation]
    totals: dict[str, int]
    reasons: dict[str, int]
    """How many calls have each reason kind."""
    estimate: dict[str, Any]
    against: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``experiment plan --json`` output)."""
        return asdict(self)


# ---------------------------------------------------------------------------- building


def explain_plan(
    manager: Any,
    dag: Any = None,
    against: str | None = None,
    keep: Callable[[CallExplanation], bool] | None = None,
    limit: int | None = None,
) -> PlanExplanation:
    """Explain the plan of ``dag`` (default: the manager's last mapped DAG).

    ``against`` is a run reference (as ``experiment runs`` shows it) to compare with. ``keep``
    chooses the calls listed in ``calls`` and ``limit`` caps how many (the first ones, in
    order); the totals, reasons and estimate always count every call.
    """
    dag = dag if dag is not None else manager.dag
    experiment = str(manager.experiment_name)
    current_reference = manager.get_reference_name() if manager.stored else None
    history = _History(manager, experiment, current_reference, against)
    totals = {action.value: 0 for action in Action}
    reasons: dict[str, int] = {}
    estimate = _Estimate()
    explained: list[CallExplanation] = []
    try:
        for call in dag.calls:
            entry = _explain_call(dag, call, history)
            totals[entry.action] += 1
            reasons[entry.kind] = reasons.get(entry.kind, 0) + 1
            estimate.add(entry)
            if (keep is None or keep(entry)) and (limit is None or len(explained) < limit):
                explained.append(entry)
        against_summary = history.against_summary(dag)
    finally:
        history.close()
    return PlanExplanation(
        experiment=experiment,
        code_changes=str(getattr(manager, "code_changes", fingerprint.DEFAULT_POLICY)),
        calls=explained,
        totals=totals,
        reasons=reasons,
        estimate=estimate.summary(),
        against=against_summary,
    )


def _explain_call(dag: Any, call: Any, history: _History) -> CallExplanation:
    record = dag.records[call.record_index]
    decision = dag.plan.decisions[call.key]
    params = record.params if not call.is_aggregate and not record.is_aggregate else None
    artifacts = [dag.artifacts[a] for a in call.output_artifacts]
    entry = CallExplanation(
        record=call.record_name,
        record_index=call.record_index,
        param_set=params.name if params is not None else None,
        param_hash=call.record_hash,
        stage=call.stage_name,
        position=call.position,
        action=decision.action.value,
        kind=decision.kind or "",
        reason=decision.reason,
        artifacts=[str(a.path) for a in artifacts if getattr(a, "path", None)],
        code=_code_state(artifacts),
    )
    if entry.kind == "missing" and params is not None:
        changes, old_hash, source = history.parameter_changes(params)
        if changes:
            entry.kind = "parameter_changed"
            entry.parameter_changes = changes
            shown = ", ".join(f"{c['field']} {c['old']} -> {c['new']}" for c in changes[:3])
            more = f" and {len(changes) - 3} more" if len(changes) > 3 else ""
            needed = decision.reason.rfind(" (needed by ")
            entry.reason = (
                f"parameter changed: {shown}{more} (since {source}; hash {old_hash[:8]} -> "
                f"{call.record_hash[:8]}, not cached under the new hash)"
                + (decision.reason[needed:] if needed >= 0 else "")
            )
    if decision.action.executes:
        entry.estimate_seconds = history.duration(call.record_name, call.stage_name)
    entry.against = history.against_call(call, params, artifacts)
    return entry


def _code_state(artifacts: list[Any]) -> str:
    cached = [a for a in artifacts if a.cached]
    if not cached:
        return "not cached"
    if any(getattr(a, "code_change", None) for a in cached):
        return "changed"
    if any(not (a.metadata or {}).get("code_fingerprint") for a in cached):
        return "unknown"
    return "same"


EXECUTING_ACTIONS = (Action.COMPUTE.value, Action.OVERWRITE.value)
"""The actions of calls whose stage body runs."""


class _Estimate:
    """The expected serial stage time of the executing calls, summed as they are explained."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.executing = 0
        self.known = 0

    def add(self, call: CallExplanation) -> None:
        if call.action not in EXECUTING_ACTIONS:
            return
        self.executing += 1
        if call.estimate_seconds is not None:
            self.known += 1
            self.seconds += call.estimate_seconds

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "executing_calls": self.executing,
            "calls_with_history": self.known,
            "calls_without_history": self.executing - self.known,
            "note": "serial stage time; loading, mapping and reporting not included",
        }


# ---------------------------------------------------------------------------- the registry


class _History:
    """What the run registry knows: earlier parameter sets, durations, the ``against`` run."""

    def __init__(self, manager: Any, experiment: str, current: str | None, against: str | None):
        self.manager = manager
        self.current = current
        self.experiment = experiment
        self._runs: list[dict[str, Any]] | None = None
        self._durations_loaded = False
        self._previous_indexed = False
        self.durations: dict[tuple[str, str], float] = {}
        self.stage_medians: dict[str, float] = {}
        self.param_sets: dict[str, dict[str, Any] | None] = {}
        self.against_run: dict[str, Any] | None = None
        self.against_calls: dict[tuple[str, str], dict[str, Any]] = {}
        self._previous: dict[str, tuple[str, str]] = {}
        self._changes: dict[tuple[str, str], tuple[list[dict[str, Any]], str, str]] = {}
        self._store: Any = None
        if manager.dry and not _registry_exists(manager):
            if against is not None:
                raise RunReferenceError(
                    f"--against {against}: there is no run registry yet "
                    f"({manager.manager_cache_path}store.db); run the experiment first"
                )
            return
        from .store import RunStore

        self._store = RunStore(str(manager.manager_cache_path))
        if against is not None:
            self._load_against(against)

    @property
    def runs(self) -> list[dict[str, Any]]:
        """The experiment's earlier runs, oldest first (read when first needed)."""
        if self._runs is None:
            self._runs = [
                r
                for r in (self._store.list_runs(self.experiment) if self._store else [])
                if r.get("reference") != self.current
            ]
        return self._runs

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def _load_durations(self) -> None:
        self._durations_loaded = True
        if self._store is None:
            return
        per_stage: dict[str, list[float]] = {}
        for row in self._store.stage_durations(self.experiment):
            if row["reference"] == self.current:
                continue
            key = (str(row["record"]), str(row["stage"]))
            self.durations.setdefault(key, float(row["seconds"]))
            per_stage.setdefault(str(row["stage"]), []).append(float(row["seconds"]))
        self.stage_medians = {k: statistics.median(v) for k, v in per_stage.items()}

    def _load_against(self, reference: str) -> None:
        run = self._store.get_run(reference)
        if run is None:
            matches = [r for r in self.runs if str(r.get("reference", "")).startswith(reference)]
            run = matches[0] if len(matches) == 1 else None
        if run is None:
            raise RunReferenceError(
                f"--against {reference}: no such run in the registry "
                f"({self._store.path})",
                hint="`experiment runs` lists the run references",
            )
        if run.get("experiment_name") != self.experiment:
            raise RunReferenceError(
                f"--against {reference}: that is a run of experiment "
                f"{run.get('experiment_name')!r}, not {self.experiment!r}",
                hint=f"`experiment runs {self.experiment}` lists this experiment's runs",
            )
        self.against_run = run
        for row in self._store.stage_calls(run["reference"]):
            self.against_calls[(str(row["record"]), str(row["stage"]))] = row

    def _index_previous(self) -> None:
        """Name -> (hash, run) of each parameter set in the baseline run(s), newest first."""
        self._previous_indexed = True
        baseline = [self.against_run] if self.against_run is not None else self.runs[::-1]
        for run in baseline:
            for entries in (run.get("params") or {}).values():
                for name, hash_ in entries:
                    self._previous.setdefault(str(name), (str(hash_), str(run["reference"])))

    def duration(self, record: str, stage: str) -> float | None:
        """Recorded seconds of this call (same record and stage), else the stage's median."""
        if not self._durations_loaded:
            self._load_durations()
        seconds = self.durations.get((record, stage))
        return seconds if seconds is not None else self.stage_medians.get(stage)

    def _param_set(self, hash_: str) -> dict[str, Any] | None:
        if hash_ not in self.param_sets:
            self.param_sets[hash_] = self._store.get_param_set(hash_) if self._store else None
        return self.param_sets[hash_]

    def parameter_changes(self, params: Any) -> tuple[list[dict[str, Any]], str, str]:
        """Fields that differ from the same-named set of the baseline run: (changes, hash, run).

        Worked out once per parameter set (name and hash) and handed to each of its calls as a
        copy: without a baseline run it is a registry query, and a cold run of a thousand
        records asked it 4,000 times for its report (a fifth of the report under cProfile)."""
        key = (str(params.name), str(params.hash))
        found = self._changes.get(key)
        if found is None:
            found = self._changes[key] = self._parameter_changes(params)
        changes, old_hash, source = found
        return [dict(change) for change in changes], old_hash, source

    def _parameter_changes(self, params: Any) -> tuple[list[dict[str, Any]], str, str]:
        if not self._previous_indexed:
            self._index_previous()
        previous = self._previous.get(params.name)
        source = "run " + previous[1] if previous else ""
        if previous is None and self._store is not None and self.against_run is None:
            older = [p for p in self._store.find_param_sets(params.name) if p["hash"] != params.hash]
            if older:
                previous = (older[-1]["hash"], "")
                source = "the registered parameter set"
        if previous is None or previous[0] == params.hash:
            return [], "", ""
        entry = self._param_set(previous[0])
        if entry is None:
            return [], "", ""
        old = dict(_flatten(entry.get("representation") or {}))
        new = dict(_flatten(hashing.param_set_string_hash_representations(params)))
        changes = [
            {"field": key, "old": old.get(key, "(absent)"), "new": new.get(key, "(absent)")}
            for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)
        ]
        return changes, previous[0], source

    # ------------------------------------------------------------------ against

    def against_call(self, call: Any, params: Any, artifacts: list[Any]) -> dict[str, Any] | None:
        if self.against_run is None:
            return None
        row = self.against_calls.get((call.record_name, call.stage_name))
        result: dict[str, Any] = {
            "state": row["state"] if row else "absent",
            "seconds": row["seconds"] if row else None,
        }
        if params is not None:
            result["parameter_changes"] = self.parameter_changes(params)[0]
        definition = call.detail.definition if call.detail is not None else None
        recorded = self.against_run.get("code") or {}
        code = recorded.get(call.stage_name)
        result["code_change"] = None
        if definition is not None and code:
            current = fingerprint.definition_fingerprint(definition)
            if code.get("fingerprint") != current.digest:
                result["code_change"] = "stage code changed (" + fingerprint.describe_difference(
                    code.get("parts") or {}, current.parts, code.get("version"), current.version
                ) + ")"
        elif recorded:
            result["code_change"] = "stage not in that run"
        return result

    def against_summary(self, dag: Any) -> dict[str, Any] | None:
        if self.against_run is None:
            return None
        run = self.against_run
        then = {name for entries in (run.get("params") or {}).values() for name, _ in entries}
        now = {r.params.name for r in dag.records if r.params is not None and not r.is_aggregate}
        libraries_then: dict[str, str] = {}
        for code in (run.get("code") or {}).values():
            libraries_then.update(code.get("libraries") or {})
        libraries_now: dict[str, str] = {}
        for call in dag.calls:
            if call.detail is not None:
                libraries_now.update(
                    fingerprint.definition_fingerprint(call.detail.definition).libraries
                )
        return {
            "reference": run["reference"],
            "status": run.get("status"),
            "param_sets_added": sorted(now - then),
            "param_sets_removed": sorted(then - now),
            "code_recorded": bool(run.get("code")),
            "library_changes": {
                name: [libraries_then[name], version]
                for name, version in sorted(libraries_now.items())
                if name in libraries_then and libraries_then[name] != version
            },
        }


def _registry_exists(manager: Any) -> bool:
    import os

    return os.path.exists(os.path.join(str(manager.manager_cache_path), "store.db"))


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    flat: list[tuple[str, str]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            flat.extend(_flatten(value, f"{prefix}{key}."))
        else:
            flat.append((f"{prefix}{key}", str(value)))
    return flat


# ---------------------------------------------------------------------------- run info


def code_summary(dag: Any) -> dict[str, dict[str, Any]]:
    """Stage name -> fingerprint, parts, version pin and library versions (for the run info)."""
    summary: dict[str, dict[str, Any]] = {}
    for call in dag.calls if dag is not None else []:
        if call.detail is None or call.stage_name in summary:
            continue
        found = fingerprint.definition_fingerprint(call.detail.definition)
        summary[call.stage_name] = {
            "fingerprint": found.digest,
            "parts": found.parts,
            "version": found.version,
            "libraries": found.libraries,
        }
    return summary


def record_run_code(manager: Any) -> None:
    """Store the stages' code fingerprints and library versions in the run's registry row."""
    if manager.dry or manager.parallel_mode or not manager.stored or manager.dag is None:
        return
    summary = code_summary(manager.dag)
    if not summary:
        return
    libraries: dict[str, str] = {}
    for entry in summary.values():
        libraries.update(entry["libraries"])
    from .store import RunStore

    with RunStore(str(manager.manager_cache_path)) as store:
        store.update_run(manager.get_reference_name(), code=summary, library_versions=libraries)


REASON_HEADINGS = REASON_KINDS
"""Headings for the reason keywords (re-exported for renderers)."""
