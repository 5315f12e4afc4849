"""Time each step of a run from inside the process: ``experiment`` with timers around the steps.

Sampling profilers distort the steps of a stage call that make system calls (py-spy at 200 Hz
stretched a cold N=300 run from ~10 s to 16 s and charged each sidecar's ``open()`` 0.8 ms), and
cProfile distorts every Python call. This wraps every method of the stage runtime and of the
manager, and a few helpers, in ``perf_counter`` accumulators (about a microsecond per wrapped
call), runs the ``experiment`` command with the arguments given, and prints inclusive totals,
call counts and time per call to stderr when the process exits.

Usage, in a project folder (e.g. one the harness made, or a copy of shared/bench's project)::

    BENCH_N=300 python /path/to/benchmarks/probe_steps.py bench -p bench_params 2> probe.txt

Nested steps are inclusive (a method's time contains the steps it calls). See round 8 in
``docs/performance.md`` for what it showed.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import sys
import time
from typing import Any

TOTALS: dict[str, float] = {}
CALLS: dict[str, int] = {}
STARTED = time.perf_counter()


def wrap(owner: Any, name: str, label: str) -> None:
    function = getattr(owner, name)

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            TOTALS[label] = TOTALS.get(label, 0.0) + time.perf_counter() - started
            CALLS[label] = CALLS.get(label, 0) + 1

    setattr(owner, name, timed)


def wrap_methods(cls: type, prefix: str) -> None:
    for name, member in list(vars(cls).items()):
        if inspect.isfunction(member) and not name.startswith("__"):
            wrap(cls, name, f"{prefix}.{name}")


def install() -> None:
    import pandas

    import curifactory_like.caching.base as base
    import curifactory_like.caching.builtin as builtin
    import curifactory_like.experiment as experiment
    import curifactory_like.manager as manager
    import curifactory_like.runtime.stage_runtime as stage_runtime

    for cls in stage_runtime.StageRuntime.__mro__:
        if cls.__module__.startswith("curifactory_like"):
            wrap_methods(cls, cls.__name__)
    for cls in manager.ArtifactManager.__mro__:
        if cls.__module__.startswith("curifactory_like"):
            wrap_methods(cls, cls.__name__)
    for name in ("save_metadata", "collect_metadata", "integrity_fields", "check"):
        wrap(base.Cacheable, name, f"Cacheable.{name}")
    for name in ("file_checksum", "remember_written", "sidecar_text"):
        wrap(base, name, name)
    for cacher in (builtin.PandasCacher, builtin.PickleCacher, builtin.JsonCacher):
        wrap(cacher, "save", f"{cacher.__name__}.save")
    import curifactory_like.caching.atomic as atomic

    wrap(atomic, "temporary_sibling", "temporary_sibling")
    wrap(pandas.DataFrame, "to_csv", "DataFrame.to_csv")
    wrap(logging.Logger, "_log", "logging (one line)")
    wrap(experiment, "run_experiment", "run_experiment")


def report() -> None:
    print(f"total since the probe started: {time.perf_counter() - STARTED:.3f} s", file=sys.stderr)
    for label, seconds in sorted(TOTALS.items(), key=lambda item: -item[1]):
        calls = CALLS[label]
        print(
            f"{seconds:9.3f} s {calls:7d} calls {1e3 * seconds / calls:9.3f} ms/call  {label}",
            file=sys.stderr,
        )


def main() -> int:
    install()
    atexit.register(report)
    from curifactory_like.cli import console_main

    sys.argv = ["experiment", *sys.argv[1:]]
    return int(console_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
