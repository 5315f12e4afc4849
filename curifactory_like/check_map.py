"""The map half of ``experiment check``: stage declarations, cachers, the map pass, the plan.

Every stage the experiment module defines or imports is checked statically (declaration
problems, cachers built once); then ``run()`` is called in map mode with a dry manager, the
missing-input rule of the DAG is applied to every mapped call at once, and the DAG is planned
for the summary. Problems go into the :class:`~curifactory_like.check.CheckReport`.
"""

from __future__ import annotations

import copy
import os
import traceback
from typing import Any

from .check import (
    CheckReport,
    CheckSummary,
    Problem,
    ProblemKind,
    function_location,
    package_dir,
    user_location,
)
from .errors import CurifactoryError, UnknownStageError

__all__ = ["check_stages", "map_and_plan"]


def _stage_definitions(module: Any) -> list[Any]:
    seen: dict[int, Any] = {}
    for value in vars(module).values():
        definition = getattr(value, "stage_definition", None)
        if definition is not None and id(definition) not in seen:
            seen[id(definition)] = definition
    return list(seen.values())


def check_stages(report: CheckReport, module: Any) -> None:
    """Report the declaration and cacher problems of every stage ``module`` defines or imports."""
    for definition in _stage_definitions(module):
        location = function_location(definition.function)
        for problem in definition.declaration_problems:
            report.problems.append(Problem(ProblemKind.STAGE_DECLARATION, str(problem), location))
        for output, cacher in zip(definition.outputs, definition.cachers or [], strict=False):
            try:
                cacher() if isinstance(cacher, type) else copy.deepcopy(cacher)
            except Exception as exc:
                shown = cacher.__name__ if isinstance(cacher, type) else type(cacher).__name__
                fix = (
                    f"pass a configured instance, cachers=[{shown}(...)]"
                    if isinstance(cacher, type)
                    else "make the cacher copyable (each stage call gets its own copy)"
                )
                report.problems.append(
                    Problem(
                        ProblemKind.CACHER,
                        f"stage '{definition.name}' output '{output}': cacher {shown} cannot be "
                        f"built ({type(exc).__name__}: {exc}); {fix}",
                        location,
                    )
                )


def map_and_plan(
    report: CheckReport, module: Any, param_sets: list[Any], manager: Any, summary: CheckSummary
) -> None:
    """Map ``run()`` with the dry ``manager``, report missing inputs, and plan for ``summary``."""
    manager.map_mode = True
    try:
        module.run(param_sets, manager)
    except Exception as exc:
        _report_map_failure(report, exc, manager, module)
        return
    finally:
        manager.map_mode = False
    missing = _missing_inputs(manager.records)
    report.problems.extend(missing)
    if missing:
        return
    try:
        manager.map_records()
    except Exception as exc:
        _report_map_failure(report, exc, manager, module)
        return
    dag = manager.map
    known = {stage for record in dag.records for stage in record.stages}
    unknown = [name for name in manager.overwrite_stages if name not in known]
    if unknown:
        raise UnknownStageError(
            f"--overwrite-stage {unknown[0]!r} names no stage of this experiment; its stages "
            f"are: {', '.join(sorted(known))}"
        )
    plan = dag.plan
    summary.planned = True
    summary.records = len(dag.records)
    summary.aggregates = sum(1 for record in dag.records if record.is_aggregate)
    summary.stages = sorted(known)
    summary.stage_calls = len(dag.calls)
    summary.actions = plan.totals()
    with_cacher = [i for i, artifact in enumerate(dag.artifacts) if artifact.cacher is not None]
    summary.artifacts = len(with_cacher)
    summary.cached = sum(1 for i in with_cacher if dag.artifacts[i].cached)
    computing = {
        artifact
        for call in dag.calls
        if plan.decisions[call.key].action.executes
        for artifact in call.output_artifacts
    }
    summary.to_compute = sum(1 for i in with_cacher if i in computing)


def _report_map_failure(
    report: CheckReport, exc: BaseException, manager: Any, module: Any
) -> None:
    text = exc.detailed() if isinstance(exc, CurifactoryError) else f"{type(exc).__name__}: {exc}"
    if any(p.message == text for p in report.problems):
        return  # already reported from the stage declaration
    frames = traceback.extract_tb(exc.__traceback__)
    in_stage = any(f.name == "call_stage" and f.filename.endswith("runtime.py") for f in frames)
    in_cacher = any(
        os.path.abspath(f.filename).startswith(os.path.join(package_dir(), "caching"))
        for f in frames
    )
    stage = manager.current_stage_name if in_stage else ""
    location = user_location(exc)
    definition = _definition_named(manager, module, stage) if stage else None
    if in_cacher:
        if definition is not None:
            location = function_location(definition.function)
        report.problems.append(
            Problem(
                ProblemKind.CACHER,
                f"stage '{stage}': a cacher cannot name its file ({text}); check its "
                "path_override, subdir and prefix",
                location,
            )
        )
        return
    if location is None and definition is not None:
        location = function_location(definition.function)
    where = f" in stage '{stage}'" if stage else ""
    report.problems.append(Problem(ProblemKind.MAP, f"run() failed while mapping{where}: {text}",
                                   location))


def _definition_named(manager: Any, module: Any, stage: str) -> Any:
    for record in manager.records:
        for detail in getattr(record, "mapped_calls", []):
            if detail.definition.name == stage:
                return detail.definition
    for definition in _stage_definitions(module):
        if definition.name == stage:
            return definition
    return None


def _missing_inputs(records: list[Any]) -> list[Problem]:
    """Stage inputs no earlier stage outputs (the check the run's DAG makes, all at once).

    One problem per stage and input, naming every record it affects.
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        for position, stage_name in enumerate(record.stages):
            for literal, artifact in enumerate(record.stage_inputs[position]):
                if artifact != -1:
                    continue
                name = record.stage_inputs_names[position][literal]
                if (
                    record.stage_suppress_missing[position]
                    or name in record.stage_kwargs_keys[position]
                ):
                    continue
                definition = (
                    record.mapped_calls[position].definition
                    if position < len(record.mapped_calls)
                    else None
                )
                entry = found.setdefault(
                    (stage_name, name),
                    {"records": [], "in_state": False, "earlier": record.stages[:position],
                     "location": function_location(definition.function) if definition else None},
                )
                entry["records"].append(record.get_reference_name())
                entry["in_state"] = entry["in_state"] or name in record.state
    problems = []
    for (stage_name, name), entry in found.items():
        shown = entry["records"][:3]
        more = len(entry["records"]) - len(shown)
        where = ", ".join(shown) + (f" and {more} more" if more else "")
        earlier = entry["earlier"]
        hint = (
            f" run() put {name!r} into record.state itself, which the map does not see: pass "
            f"it to the call instead ({stage_name}(record, {name}=...))."
            if entry["in_state"]
            else f" Run a stage that outputs {name!r} first, pass {name}=... to the call, or "
            "set suppress_missing_inputs=True and give it a default."
        )
        problems.append(
            Problem(
                ProblemKind.MISSING_INPUT,
                f"stage '{stage_name}' needs input {name!r}, which no earlier stage "
                f"({', '.join(earlier) if earlier else 'none runs before it'}) outputs, in "
                f"{where}." + hint,
                entry["location"],
            )
        )
    return problems
