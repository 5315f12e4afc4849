"""``--dask ADDRESS`` / ``--dask local:N``: run stage tasks on a Dask ``distributed`` cluster.

Dask is an optional extra (``pip install curifactory_like[dask]``), imported only here. Workers
need the project importable from the same path and the cache directory shared with the parent
(a network file system for a real cluster). Stage ``resources=`` hints are passed to Dask.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from .base import Executor, StageTask, TaskResult, WorkerContext

TIMEOUT_GRACE_SECONDS = 2.0


def _run_on_worker(context: WorkerContext, task: StageTask) -> TaskResult:
    from .worker import run_task

    return run_task(context, task)


class DaskExecutor(Executor):
    """Submits tasks to a Dask scheduler (an existing one, or a LocalCluster it starts)."""

    name = "dask"

    def __init__(self, address: str):
        try:
            import distributed  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "the Dask executor needs the optional dependency 'distributed': "
                "pip install 'curifactory_like[dask]'"
            ) from exc
        self.address = address
        self.client: Any = None
        self.cluster: Any = None
        self.context: WorkerContext | None = None
        self.futures: dict[Any, StageTask] = {}
        self.started: dict[Any, float] = {}
        self.queue: deque[StageTask] = deque()
        self._slots = 1

    @property
    def slots(self) -> int:
        return self._slots

    def start(self, context: WorkerContext) -> None:
        from distributed import Client, LocalCluster

        self.context = context
        if self.address.startswith("local"):
            _, _, count = self.address.partition(":")
            workers = int(count) if count else 2
            self.cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                host="127.0.0.1",
            )
            self.client = Client(self.cluster)
        else:
            self.client = Client(self.address)
        info = self.client.scheduler_info()
        threads = sum(w.get("nthreads", 1) for w in info.get("workers", {}).values())
        self._slots = max(1, threads)

    def submit(self, task: StageTask) -> None:
        self.queue.append(task)
        self._dispatch()

    def _dispatch(self) -> None:
        """Keep at most ``slots`` tasks on the cluster, so a task's clock starts when it can run."""
        assert self.client is not None and self.context is not None
        while self.queue and len(self.futures) < self._slots:
            task = self.queue.popleft()
            # a LocalCluster declares no resources: passing hints there would never schedule
            resources = task.resources or None if self.cluster is None else None
            future = self.client.submit(
                _run_on_worker,
                self.context,
                task,
                key=f"curifactory_like-{self.context.reference}-{task.task_id}",
                resources=resources,
                pure=False,
                retries=0,
            )
            self.futures[future] = task
            self.started[future] = time.monotonic()

    def _allowance(self, task: StageTask) -> float | None:
        if not task.timeout:
            return None
        return task.timeout * max(1, task.attempts) + TIMEOUT_GRACE_SECONDS

    def collect(self, timeout: float | None = None) -> list[TaskResult]:
        from distributed import wait

        if not self.futures:
            return []
        now = time.monotonic()
        limits = [
            self.started[f] + allowance - now
            for f, task in self.futures.items()
            if (allowance := self._allowance(task)) is not None
        ]
        if timeout is not None:
            limits.append(timeout)
        wait_for = max(0.05, min(limits)) if limits else None
        done = wait(list(self.futures), timeout=wait_for, return_when="FIRST_COMPLETED").done
        results = []
        for future in done:
            task = self.futures.pop(future)
            self.started.pop(future, None)
            try:
                results.append(future.result())
            except Exception as exc:  # the worker itself was lost
                results.append(
                    TaskResult(
                        task.task_id,
                        False,
                        error=f"WorkerDiedError: the Dask worker running {task.label} was lost "
                        f"({type(exc).__name__}: {exc})",
                        error_type="WorkerDiedError",
                    )
                )
        now = time.monotonic()
        for future, task in list(self.futures.items()):
            allowance = self._allowance(task)
            if allowance is not None and now - self.started[future] > allowance:
                elapsed = now - self.started.pop(future)
                future.cancel()
                self.futures.pop(future)
                results.append(
                    TaskResult(
                        task.task_id,
                        False,
                        seconds=elapsed,
                        error=f"StageTimeoutError: {task.label} ran past its timeout of "
                        f"{task.timeout:g} s (the Dask worker thread cannot be interrupted; "
                        "its result will be ignored)",
                        error_type="StageTimeoutError",
                    )
                )
        self._dispatch()
        return results

    def stop(self) -> None:
        if self.client is not None:
            for future in self.futures:
                future.cancel()
            self.futures.clear()
            self.queue.clear()
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None
