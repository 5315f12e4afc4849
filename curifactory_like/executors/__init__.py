"""Executors: where stage calls run. ``serial`` (this process), ``processes`` (``--parallel N``)
and ``dask`` (``--dask ADDRESS`` or ``--dask local:N``), behind one small interface."""

from __future__ import annotations

from .base import CallState, Executor, StageTask, TaskResult, WorkerContext


def make_executor(parallel: int | None = None, dask: str | None = None) -> Executor:
    """The executor for the CLI options (``--dask`` wins over ``--parallel``)."""
    if dask:
        from .dask import DaskExecutor

        return DaskExecutor(dask)
    if parallel and parallel > 0:
        from .processes import ProcessExecutor

        return ProcessExecutor(parallel)
    from .serial import SerialExecutor

    return SerialExecutor()


__all__ = ["CallState", "Executor", "StageTask", "TaskResult", "WorkerContext", "make_executor"]
