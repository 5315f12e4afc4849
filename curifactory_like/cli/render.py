"""Console rendering for the ``experiment`` command (rich), kept apart from the logic."""

from __future__ import annotations

from typing import Any

from ..plan import Action

_STYLE = {
    Action.COMPUTE: "yellow",
    Action.OVERWRITE: "magenta",
    Action.LOAD: "cyan",
    Action.SKIP: "green",
}


def _console(plain: bool = False) -> Any:
    from rich.console import Console

    return Console(no_color=plain, highlight=False, soft_wrap=True)


def _producer(dag: Any, artifact_indices: list[int]) -> str:
    for index in artifact_indices:
        metadata = dag.artifacts[index].metadata or {}
        reference = (metadata.get("manager_run_info") or {}).get("reference")
        if reference:
            return reference
    return ""


def print_dag(dag: Any, plain: bool = False) -> None:
    """Every record, its stage calls with the planned action and reason, and who made the cache."""
    from rich.markup import escape

    console = _console(plain)
    plan = dag.plan
    for record_index, record in enumerate(dag.records):
        console.print(f"[bold]{escape(dag.get_record_string(record_index))}[/bold]")
        for position, stage_name in enumerate(record.stages):
            decision = plan.decision_for(record_index, position) if plan else None
            action = decision.action if decision else Action.SKIP
            outputs = record.stage_outputs[position]
            names = escape(", ".join(str(dag.artifacts[i].name) for i in outputs) or "-")
            made_by = _producer(dag, outputs)
            made = f"  [dim](cached by {made_by})[/dim]" if made_by else ""
            reason = escape(decision.reason) if decision else ""
            console.print(
                f"  [{_STYLE[action]}]{action.value:<9}[/{_STYLE[action]}] {stage_name} -> "
                f"{names}{made}\n             [dim]{reason}[/dim]"
            )
    if plan is not None:
        totals = plan.totals()
        console.print(
            "[bold]Totals:[/bold] "
            + ", ".join(f"{count} {action}" for action, count in totals.items())
        )


def print_error(message: str) -> None:
    """An error for the user: what went wrong and how to fix it, without a traceback."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/bold red] {escape(message)}"
    )


def print_run_summary(manager: Any, plain: bool = False) -> None:
    """One closing line: the run reference, its status and where its log is."""
    from rich.markup import escape

    console = _console(plain)
    status = manager.status
    style = "green" if status == "complete" else "red"
    console.print(
        f"Run [bold]{manager.get_reference_name()}[/bold]: [{style}]{status}[/{style}]"
        + (f" - {escape(str(manager.error))}" if manager.error and status == "error" else "")
    )


def print_runs(runs: list[dict[str, Any]], plain: bool = False) -> None:
    """Past runs as a table: reference, status, start, dirty marker, host, notes, run line."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=False, highlight=False)
    for column in ("reference", "status", "commit", "host", "notes", "run line"):
        table.add_column(column, overflow="fold")
    for run in runs:
        status = str(run.get("status", ""))
        style = {"complete": "green", "error": "red"}.get(status, "yellow")
        commit = str(run.get("commit") or "")[:10]
        if run.get("workdir_dirty"):
            commit += "*"
        notes = str(run.get("notes") or "").splitlines()
        table.add_row(
            escape(str(run.get("reference", ""))),
            f"[{style}]{escape(status)}[/{style}]",
            commit,
            escape(str(run.get("hostname") or "")),
            escape(notes[0]) if notes else "",
            escape(str(run.get("cli") or "")),
        )
    _console(plain).print(table)
