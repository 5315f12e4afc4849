"""The live counts a scheduled run shows with ``--progress``."""

from __future__ import annotations

from typing import Any

from .executors.base import CallState

_DONE = (CallState.FINISHED, CallState.CACHED, CallState.FAILED, CallState.UPSTREAM_FAILED)


class ProgressDisplay:
    """Live counts of running / done / failed calls (refreshed by the scheduler loop itself,
    so no display thread exists when worker processes are forked)."""

    def __init__(self, total: int, executor: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            auto_refresh=False,
        )
        self.task = self.progress.add_task(f"stage calls ({executor})", total=total)
        self.progress.start()

    def update(self, outcomes: Any) -> None:
        counts: dict[CallState, int] = {}
        for outcome in outcomes:
            counts[outcome.state] = counts.get(outcome.state, 0) + 1
        done = sum(counts.get(state, 0) for state in _DONE)
        failed = counts.get(CallState.FAILED, 0) + counts.get(CallState.UPSTREAM_FAILED, 0)
        self.progress.update(
            self.task,
            completed=done,
            description=f"running {counts.get(CallState.RUNNING, 0)}, "
            f"done {done - failed}, failed {failed}",
        )
        self.progress.refresh()

    def stop(self) -> None:
        self.progress.stop()
