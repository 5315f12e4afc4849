"""The run registry: runs, parameter sets and artifact use, in ``<manager_cache_path>/store.db``.

Open one :class:`RunStore` per process (or share one between threads) and close it when done::

    with RunStore(manager_cache_path) as store:
        run = store.start_run("sweep", datetime.now(), {"params": {...}})
        ...
        store.update_run(run["reference"], status=RunStatus.COMPLETE)
"""

from __future__ import annotations

from .locks import BUSY_TIMEOUT_SECONDS
from .registry import SCHEMA_VERSION, TIMESTAMP_FORMAT, ArtifactAction, RunStatus, RunStore

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "SCHEMA_VERSION",
    "TIMESTAMP_FORMAT",
    "ArtifactAction",
    "RunStatus",
    "RunStore",
]
