"""Garbage-collector settings for a batch run of the ``experiment`` command.

A run keeps almost everything it creates until it ends (records, artifact entries, sidecar
metadata, the DAG), which is the worst case for CPython's generational collector: every full
collection walks the whole heap again, including the hundreds of thousands of objects that
numpy, pandas and matplotlib create at import and never free. Measured at N=1000 (warm), full
collections cost ~3 s of a ~10 s run. In a batch run (the CLI) we therefore move everything that
exists once the experiment module is imported into the permanent generation (``gc.freeze``), and
collect the young generations less often. Library use (notebooks, scripts calling
``run_experiment``) keeps the interpreter's defaults unless it calls ``enable_batch_mode``.
"""

from __future__ import annotations

import gc

_BATCH = False
BATCH_THRESHOLDS = (50_000, 20, 20)
"""``gc.set_threshold`` in batch mode (the default is ``(700, 10, 10)``)."""


def enable_batch_mode() -> None:
    """Called by the CLI: fewer young-generation collections from here on."""
    global _BATCH
    _BATCH = True
    gc.set_threshold(*BATCH_THRESHOLDS)


def imports_done() -> None:
    """Called once the experiment module is imported: freeze what exists (batch mode only)."""
    if _BATCH:
        gc.freeze()
