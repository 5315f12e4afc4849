"""Console rendering of an explained plan (``experiment plan``)."""

from __future__ import annotations

from typing import Any

from ..plan import REASON_KINDS, Action

_STYLE = {
    Action.COMPUTE.value: "yellow",
    Action.OVERWRITE.value: "magenta",
    Action.LOAD.value: "cyan",
    Action.SKIP.value: "green",
}


def format_seconds(seconds: float) -> str:
    """``0.42 s``, ``3 min 5 s``, ``2 h 10 min``."""
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def estimate_text(estimate: dict[str, Any]) -> str:
    """One line: the estimated run time and how much of it rests on recorded durations."""
    executing = estimate["executing_calls"]
    if executing == 0:
        return "nothing to execute"
    text = (
        f"~{format_seconds(estimate['seconds'])} for {executing} executing call(s), "
        f"{estimate['calls_with_history']} from recorded durations"
    )
    if estimate["calls_without_history"]:
        text += f", {estimate['calls_without_history']} with no recorded duration (not counted)"
    return text


def _against_line(against: dict[str, Any]) -> str:
    state = against.get("state", "absent")
    seconds = against.get("seconds")
    parts = [f"then: {state}" + (f" in {format_seconds(seconds)}" if seconds else "")]
    changes = against.get("parameter_changes") or []
    if changes:
        parts.append(
            "parameters changed: " + ", ".join(f"{c['field']} {c['old']} -> {c['new']}" for c in changes)
        )
    if against.get("code_change"):
        parts.append(str(against["code_change"]))
    return "; ".join(parts)


def print_plan(explanation: Any, plain: bool = False) -> None:
    """Every call with its action and reason, then totals, reasons, estimate and comparison."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(no_color=plain, highlight=False, soft_wrap=True)
    console.print(
        f"[bold]Plan of experiment {escape(explanation.experiment)}[/bold] "
        f"(code_changes={explanation.code_changes})"
    )
    current = None
    for call in explanation.calls:
        if call.record != current:
            current = call.record
            console.print(f"[bold]{escape(call.record)}[/bold] [dim]hash {call.param_hash[:8]}[/dim]")
        style = _STYLE.get(call.action, "white")
        estimate = (
            f" [dim](~{format_seconds(call.estimate_seconds)})[/dim]"
            if call.estimate_seconds is not None
            else ""
        )
        console.print(
            f"  [{style}]{call.action:<9}[/{style}] {escape(call.stage)}{estimate}\n"
            f"             [dim]{escape(call.reason)}[/dim]"
        )
        if call.against is not None:
            console.print(f"             [dim]{escape(_against_line(call.against))}[/dim]")
    console.print(
        "[bold]Totals:[/bold] "
        + ", ".join(f"{count} {action}" for action, count in explanation.totals.items())
    )
    console.print(
        "[bold]Reasons:[/bold] "
        + ", ".join(
            f"{count} {REASON_KINDS.get(kind, kind or 'other')}"
            for kind, count in sorted(explanation.reasons.items(), key=lambda kv: -kv[1])
        )
    )
    console.print(f"[bold]Estimated run time:[/bold] {escape(estimate_text(explanation.estimate))}")
    against = explanation.against
    if against is not None:
        console.print(f"[bold]Compared with run {escape(against['reference'])}[/bold] "
                      f"({escape(str(against.get('status')))})")
        for key, label in (("param_sets_added", "parameter sets added"),
                           ("param_sets_removed", "parameter sets removed")):
            if against[key]:
                console.print(f"  {label}: {escape(', '.join(against[key]))}")
        for name, (old, new) in against["library_changes"].items():
            console.print(f"  library {escape(name)}: {escape(old)} -> {escape(new)}")
        if not against["code_recorded"]:
            console.print("  [dim]that run recorded no code fingerprints[/dim]")
