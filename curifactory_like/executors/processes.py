"""``--parallel N``: local worker processes, one task at a time each.

A small pool of our own rather than ``concurrent.futures``: when a worker dies (killed,
segfault, out of memory) only the task it was running fails, with a clear message, and a fresh
worker takes its place; a task past its ``timeout`` is stopped by terminating its worker.
Workers are forked where the platform allows (they inherit the imported project), else spawned.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from .. import gcpolicy
from .base import Executor, StageTask, TaskResult, WorkerContext

TIMEOUT_GRACE_SECONDS = 2.0
"""Extra time a worker gets past a task's timeout before it is terminated."""


def _worker_main(connection: Connection, context: WorkerContext) -> None:
    import logging

    from .worker import prepare_process, run_task

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    package_logger = logging.getLogger("curifactory_like")
    for handler in list(package_logger.handlers):  # inherited by fork: the parent logs for us
        package_logger.removeHandler(handler)
    package_logger.addHandler(logging.NullHandler())
    prepare_process(context)
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        if task is None:
            return
        connection.send(run_task(context, task))


def _allowance(task: StageTask) -> float:
    """How long the parent lets a task run before it stops the worker (all attempts)."""
    return (task.timeout or 0.0) * max(1, task.attempts) + TIMEOUT_GRACE_SECONDS


@dataclass
class _Worker:
    process: Any
    connection: Connection
    task: StageTask | None = None
    started: float = 0.0


class ProcessExecutor(Executor):
    """Runs tasks on N local worker processes."""

    name = "processes"
    chains = True

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError("--parallel needs at least 1 worker")
        self.requested = workers
        self.workers: list[_Worker] = []
        self.queue: deque[StageTask] = deque()
        self.context: WorkerContext | None = None
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self._mp: Any = multiprocessing.get_context(method)
        self._finished: list[TaskResult] = []

    @property
    def slots(self) -> int:
        return self.requested

    def start(self, context: WorkerContext) -> None:
        self.context = context

    def _spawn(self) -> _Worker:
        assert self.context is not None
        parent_end, child_end = self._mp.Pipe()
        process = self._mp.Process(
            target=_worker_main, args=(child_end, self.context), daemon=True
        )
        with gcpolicy.forking():
            process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        self.workers.append(worker)
        return worker

    def submit(self, task: StageTask) -> None:
        self.queue.append(task)
        self._dispatch()

    def _dispatch(self) -> None:
        while self.queue:
            idle = next((w for w in self.workers if w.task is None), None)
            if idle is None:
                if len(self.workers) >= self.requested:
                    return
                idle = self._spawn()
            task = self.queue.popleft()
            idle.task = task
            idle.started = time.monotonic()
            idle.connection.send(task)

    def collect(self, timeout: float | None = None) -> list[TaskResult]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished:
            busy = [w for w in self.workers if w.task is not None]
            if not busy:
                break
            wait_for = self._next_timeout(busy, deadline)
            ready = wait(
                [w.connection for w in busy] + [w.process.sentinel for w in busy],
                timeout=wait_for,
            )
            for worker in busy:
                if worker.connection in ready:
                    try:
                        result = worker.connection.recv()
                    except (EOFError, OSError):
                        self._fail_dead(worker)
                        continue
                    worker.task = None
                    self._finished.append(result)
                elif worker.process.sentinel in ready:
                    self._fail_dead(worker)
            self._enforce_timeouts()
            self._dispatch()
            if deadline is not None and time.monotonic() >= deadline:
                break
        finished, self._finished = self._finished, []
        return finished

    def _next_timeout(self, busy: list[_Worker], deadline: float | None) -> float | None:
        limits = [
            w.started + _allowance(w.task) - time.monotonic()
            for w in busy
            if w.task is not None and w.task.timeout
        ]
        if deadline is not None:
            limits.append(deadline - time.monotonic())
        return max(0.0, min(limits)) if limits else None

    def _enforce_timeouts(self) -> None:
        now = time.monotonic()
        for worker in list(self.workers):
            task = worker.task
            if task is not None and task.timeout and now - worker.started > _allowance(task):
                worker.process.terminate()
                worker.process.join(5)
                self._retire(worker)
                self._finished.append(
                    TaskResult(
                        task.task_id,
                        False,
                        seconds=now - worker.started,
                        error=f"StageTimeoutError: {task.label} ran past its timeout of "
                        f"{task.timeout:g} s and its worker was stopped",
                        error_type="StageTimeoutError",
                    )
                )

    def _fail_dead(self, worker: _Worker) -> None:
        task = worker.task
        worker.process.join(1)
        code = worker.process.exitcode
        self._retire(worker)
        if task is None:
            return
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        self._finished.append(
            TaskResult(
                task.task_id,
                False,
                seconds=time.monotonic() - worker.started,
                error=f"WorkerDiedError: the worker process (pid {worker.process.pid}) running "
                f"{task.label} died ({how}); it may have been killed, crashed or run out of "
                "memory. Rerun to retry it from the cache.",
                error_type="WorkerDiedError",
            )
        )

    def _retire(self, worker: _Worker) -> None:
        worker.connection.close()
        if worker in self.workers:
            self.workers.remove(worker)

    def stop(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(OSError, BrokenPipeError):
                worker.connection.send(None)
        for worker in self.workers:
            worker.process.join(2)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(2)
            worker.connection.close()
        self.workers.clear()
        self.queue.clear()

    def __repr__(self) -> str:
        return f"ProcessExecutor(workers={self.requested}, pid={os.getpid()})"
