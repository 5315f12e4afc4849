"""The stage runtime: what happens when a decorated stage is called with a record.

Three situations, chosen by the manager's state:

* **map** (``manager.map_mode``): nothing runs; the call, its inputs and its outputs (with their
  cache status) are recorded for the DAG.
* **planned** (``manager.map`` holds an analysed DAG): the call follows its ``Decision``:
  skip (outputs left on disk behind lazy handles), load, or compute.
* **live** (no map, e.g. a notebook or a script): the call checks the cache and loads or
  computes, as curifactory does.

The runtime is split by step; ``StageRuntime`` combines them:

* ``call_context.py``: ``CallContext``, one call as the steps pass it along;
* ``base.py``: per-run state and shared helpers (artifact registration, call log, checks);
* ``preparation.py``: cachers, lazy outputs and inputs of a call;
* ``deciding.py``: the map pass and the executed pass's ``Decision``;
* ``loading.py``: skipping and loading cached outputs;
* ``computing.py``: running the stage (retries, deadline) and storing its outputs;
* ``releasing.py``: handing values no later call reads back to their cache files (CLI runs);
* ``stage_runtime.py``: ``StageRuntime.call_stage``, the entry point.
"""

from .base import StageRuntimeBase
from .base import logger as logger
from .call_context import CallContext
from .computing import _STORAGE_ERRORS as _STORAGE_ERRORS
from .computing import ComputingMixin, deadline
from .deciding import DecidingMixin
from .loading import LoadingMixin
from .preparation import PreparationMixin
from .releasing import ReleasingMixin
from .stage_runtime import StageRuntime

__all__ = [
    "CallContext",
    "ComputingMixin",
    "DecidingMixin",
    "LoadingMixin",
    "PreparationMixin",
    "ReleasingMixin",
    "StageRuntime",
    "StageRuntimeBase",
    "deadline",
]
