"""The "Plan" section of the run report: what the run set out to do, and why.

The same explained plan as ``experiment plan`` (see ``explain.py``), as decided when the run
was mapped: totals per action and per reason, the estimate from earlier runs' durations beside
the actual stage time, and every call that executed with its reason, parameter changes and code
changes. Runs without a stage plan (live sessions, ``--no-dag``) have no plan section.
"""

from __future__ import annotations

import logging
from typing import Any

from ..plan import REASON_KINDS

logger = logging.getLogger("curifactory_like.reporting")

PLAN_ROWS_SHOWN = 300
"""Executing calls listed one by one in the report; the totals always count every call."""


def plan_context(manager: Any) -> dict[str, Any] | None:
    """The template values of the plan section, or None when the run kept no plan."""
    dag = getattr(manager, "dag", None)
    if dag is None or dag.plan is None or not dag.calls:
        return None
    from ..explain import EXECUTING_ACTIONS, explain_plan

    def executing(call: Any) -> bool:
        return call.action in EXECUTING_ACTIONS

    try:  # only the rows shown are kept (~0.5 KB per call)
        explanation = explain_plan(manager, dag, keep=executing, limit=PLAN_ROWS_SHOWN)
    except Exception as exc:  # the plan section must never break the report
        logger.warning("The report's plan section could not be built: %s", exc)
        logger.debug("plan section failure", exc_info=True)
        return None
    actual = sum(
        float(call.get("seconds") or 0.0)
        for call in manager.stage_call_states()
        if call.get("state") in ("finished", "failed")
    )
    return {
        "explanation": explanation,
        "reasons": [
            (REASON_KINDS.get(kind, kind or "other"), count)
            for kind, count in sorted(explanation.reasons.items(), key=lambda kv: -kv[1])
        ],
        "executing": explanation.calls,
        "executing_total": explanation.estimate["executing_calls"],
        "actual_seconds": actual,
    }
