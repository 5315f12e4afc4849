"""Garbage-collector settings for a batch run of the ``experiment`` command.

A run keeps almost everything it creates until it ends (records, artifact entries, sidecar
metadata, the DAG), which is the worst case for CPython's generational collector: every full
collection walks the whole heap again, including the hundreds of thousands of objects that
numpy, pandas and matplotlib create at import and never free. Measured at N=1000 (warm), full
collections cost ~3 s of a ~10 s run. During a CLI run we therefore move everything that exists
once the experiment module is imported into the permanent generation (``gc.freeze``) and collect
the young generations less often; when the command's run is over, the objects are unfrozen and
the thresholds restored, so a process that calls ``cli.main`` repeatedly (tests, notebooks) keeps
collecting its garbage. Library use (``run_experiment`` from a notebook or a script) is not
affected unless it opts in with ``batch_mode()``.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

BATCH_THRESHOLDS = (10_000, 50, 20)
"""``gc.set_threshold`` in batch mode (the interpreter's default is ``(700, 10, 10)``).

Young collections stay frequent enough to free the reference cycles each indented JSON write
leaves behind (``json``'s pure-Python encoder builds closures that refer to each other: ~4 KB
per sidecar). With a first threshold of 50,000 they piled up to ~2.3 MB more peak memory on a
cold run of a thousand records, for no measurable collection time saved (~0.2-0.3 s either
way on the warm run, measured with ``gc.callbacks``)."""

_state = {"batch": False, "frozen": False}


@contextlib.contextmanager
def batch_mode() -> Iterator[None]:
    """Within the block: fewer young collections, and ``imports_done`` freezes the heap."""
    if _state["batch"]:  # nested: the outer block decides
        yield
        return
    previous = gc.get_threshold()
    _state["batch"] = True
    gc.set_threshold(*BATCH_THRESHOLDS)
    try:
        yield
    finally:
        _state["batch"] = False
        if _state["frozen"]:
            gc.unfreeze()
            _state["frozen"] = False
        gc.set_threshold(*previous)


def in_batch_mode() -> bool:
    """Whether an ``experiment`` command run is in progress (see ``batch_mode``)."""
    return bool(_state["batch"])


def imports_done() -> None:
    """Called once the experiment module is imported: freeze what exists (batch mode only)."""
    if _state["batch"] and not _state["frozen"]:
        gc.freeze()
        _state["frozen"] = True


@contextlib.contextmanager
def forking() -> Iterator[None]:
    """Around forking worker processes: the heap as it is now goes to the permanent generation.

    A forked worker shares the parent's memory pages until it writes to them, and a collection
    writes to every object it walks (reference counts and the collector's own links), so each
    worker copies the pages of every unfrozen object it inherited (in a command run, what the
    parent built after the import: the mapped DAG, the parsed sidecars, the plan; in library
    use, the whole heap) the first time its collector runs. Frozen objects are never walked. Measured on the benchmark workload (N=100, ``--parallel 2``): the workers' CPU time
    fell from 3.70-3.90 s to 3.39-3.54 s, and the executor phase from 2.38-2.48 s to
    2.16-2.29 s. In batch mode the parent keeps the objects frozen (it keeps them until the run
    ends anyway, and ``batch_mode`` unfreezes them then); otherwise the parent's state is
    restored after the fork, unless something else had already frozen objects, in which case
    nothing is frozen here.
    """
    if _state["batch"]:
        gc.freeze()
        _state["frozen"] = True
        yield
        return
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def before_process_exit() -> None:
    """The ``experiment`` command is done and the interpreter is about to exit.

    Freezing the heap spares the collection the interpreter runs at shutdown a walk over every
    object alive (~0.4-0.6 s once numpy, pandas and matplotlib are imported, measured on the
    benchmark workload). Objects are still freed by reference counting as modules are torn
    down, and ``atexit`` handlers and file flushes run as usual; only reference cycles still
    alive at exit are left to the operating system with the rest of the process.
    """
    gc.freeze()
