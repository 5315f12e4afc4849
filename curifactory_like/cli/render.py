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


def _dag_lines(dag: Any) -> Any:
    """The map as lines of ``(text, style)`` segments (style ``""`` for unstyled text)."""
    plan = dag.plan
    for record_index, record in enumerate(dag.records):
        yield [(dag.get_record_string(record_index), "bold")]
        for position, stage_name in enumerate(record.stages):
            decision = plan.decision_for(record_index, position) if plan else None
            action = decision.action if decision else Action.SKIP
            outputs = record.stage_outputs[position]
            names = ", ".join(str(dag.artifacts[i].name) for i in outputs) or "-"
            made_by = _producer(dag, outputs)
            line = [("  ", ""), (f"{action.value:<9}", _STYLE[action]),
                    (f" {stage_name} -> {names}", "")]
            if made_by:
                line += [("  ", ""), (f"(cached by {made_by})", "dim")]
            yield line
            yield [("             ", ""), (decision.reason if decision else "", "dim")]
    if plan is not None:
        totals = plan.totals()
        yield [("Totals:", "bold"),
               (" " + ", ".join(f"{count} {action}" for action, count in totals.items()), "")]


def print_dag(dag: Any, plain: bool = False) -> None:
    """Every record, its stage calls with the planned action and reason, and who made the cache.

    On a terminal the lines are styled with rich; otherwise (a pipe or a file, where rich would
    drop the styles anyway) the same text is written directly, which for a 1,000-record map is
    ~20x cheaper than a rich print per line.
    """
    import sys

    if _plain_stdout():  # rich would not style it either: no need to import rich at all
        _write_plain(dag, sys.stdout)
        return
    from rich.markup import escape

    console = _console(plain)
    if not console.is_terminal:
        _write_plain(dag, sys.stdout)
        return
    for line in _dag_lines(dag):
        console.print(
            "".join(f"[{style}]{escape(text)}[/{style}]" if style else escape(text)
                    for text, style in line)
        )


def _plain_stdout() -> bool:
    """Whether stdout is not a terminal and nothing asks rich to treat it as one."""
    import os
    import sys

    if os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE"):
        return False
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stdout: let rich decide
        return False


def _write_plain(dag: Any, out: Any) -> None:
    for line in _dag_lines(dag):
        out.write("".join(text for text, _ in line) + "\n")
    out.flush()


def print_error(message: str) -> None:
    """An error for the user: what went wrong and how to fix it, without a traceback."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/bold red] {escape(message)}"
    )


def print_run_summary(manager: Any, plain: bool = False) -> None:
    """One closing line: the run reference, its status and where its log is."""
    import sys

    status = manager.status
    error = f" - {manager.error}" if manager.error and status == "error" else ""
    if not sys.stdout.isatty():  # the same text rich would print, without importing rich
        print(f"Run {manager.get_reference_name()}: {status}{error}", flush=True)
        return
    from rich.markup import escape

    console = _console(plain)
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
