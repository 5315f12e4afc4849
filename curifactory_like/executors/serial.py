"""The serial executor: tasks run one after another in this process."""

from __future__ import annotations

from collections import deque

from .base import Executor, StageTask, TaskResult, WorkerContext


class SerialExecutor(Executor):
    """Runs each task in the calling process when results are collected."""

    name = "serial"

    def __init__(self) -> None:
        self.queue: deque[StageTask] = deque()
        self.context: WorkerContext | None = None

    @property
    def slots(self) -> int:
        return 1

    def start(self, context: WorkerContext) -> None:
        self.context = context

    def submit(self, task: StageTask) -> None:
        self.queue.append(task)

    def collect(self, timeout: float | None = None) -> list[TaskResult]:
        from .worker import run_task

        assert self.context is not None
        if not self.queue:
            return []
        return [run_task(self.context, self.queue.popleft())]

    def stop(self) -> None:
        self.queue.clear()
