"""``--dask ADDRESS`` / ``--dask local:N``: run stage tasks on a Dask ``distributed`` cluster.

Dask is an optional extra (``pip install curifactory_like[dask]``), imported only here. Workers
need the project importable from the same path and the cache directory shared with the parent
(a network file system for a real cluster). Stage ``resources=`` hints are passed to Dask.
"""

from __future__ import annotations

from typing import Any

from .base import Executor, StageTask, TaskResult, WorkerContext


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
        self.futures: dict[Any, int] = {}
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
        assert self.client is not None and self.context is not None
        future = self.client.submit(
            _run_on_worker,
            self.context,
            task,
            key=f"curifactory_like-{self.context.reference}-{task.task_id}",
            resources=task.resources or None,
            pure=False,
            retries=0,
        )
        self.futures[future] = task.task_id

    def collect(self, timeout: float | None = None) -> list[TaskResult]:
        from distributed import wait

        if not self.futures:
            return []
        done = wait(list(self.futures), timeout=timeout, return_when="FIRST_COMPLETED").done
        results = []
        for future in done:
            task_id = self.futures.pop(future)
            try:
                results.append(future.result())
            except Exception as exc:  # the worker itself was lost
                results.append(
                    TaskResult(
                        task_id,
                        False,
                        error=f"WorkerDiedError: the Dask worker running this task was lost "
                        f"({type(exc).__name__}: {exc})",
                        error_type="WorkerDiedError",
                    )
                )
        return results

    def stop(self) -> None:
        if self.client is not None:
            for future in self.futures:
                future.cancel()
            self.futures.clear()
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None
