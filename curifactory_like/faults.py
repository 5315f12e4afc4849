"""Fault injection for the crash-safety tests: die with SIGKILL at a named point of a run.

The places where a run writes something (stage bodies, artifact files, sidecars, registry
transactions, report pages) call :func:`checkpoint` with a dotted name. Normally that is a
single ``if`` on a module constant. Two environment variables, read once at import, change it:

``CURIFACTORY_LIKE_KILL_AT=name[:n]``
    the ``n``-th time (default 1) this process passes checkpoint ``name``, it kills itself with
    ``SIGKILL`` (no ``finally``, no ``atexit``: exactly what a power cut or the OOM killer does
    to the process).
``CURIFACTORY_LIKE_FAULT_TRACE=path``
    append every checkpoint passed (one name a line) to ``path``, so a test can first learn
    which points a run passes and then kill at each of them.

Checkpoint names: ``stage.start`` / ``stage.end`` (around a stage body), ``artifact.write`` /
``artifact.written`` (around ``cacher.save``), ``sidecar.write`` / ``sidecar.written``,
``atomic.replace`` (a finished temporary file about to be moved into place),
``registry.commit`` / ``registry.committed`` (around each registry transaction's COMMIT),
``report.run`` / ``report.index`` / ``report.latest`` (report pages).
"""

from __future__ import annotations

import os
import signal

__all__ = ["KILL_AT_VARIABLE", "TRACE_VARIABLE", "checkpoint"]

KILL_AT_VARIABLE = "CURIFACTORY_LIKE_KILL_AT"
TRACE_VARIABLE = "CURIFACTORY_LIKE_FAULT_TRACE"


def _parse_kill_at(value: str) -> tuple[str, int] | None:
    if not value:
        return None
    name, _, count = value.partition(":")
    return name, int(count) if count else 1


_KILL_AT = _parse_kill_at(os.environ.get(KILL_AT_VARIABLE, ""))
_TRACE = os.environ.get(TRACE_VARIABLE) or None
_ACTIVE = _KILL_AT is not None or _TRACE is not None
_passed: dict[str, int] = {}


def checkpoint(name: str) -> None:
    """Mark a point of the run; kill the process here if ``CURIFACTORY_LIKE_KILL_AT`` says so."""
    if not _ACTIVE:
        return
    count = _passed[name] = _passed.get(name, 0) + 1
    if _TRACE is not None:
        with open(_TRACE, "a", encoding="utf-8") as trace:
            trace.write(f"{name}\n")
    if _KILL_AT is not None and (name, count) == _KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)
