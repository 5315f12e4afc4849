"""Writing a stage's sidecars on a background thread while the next stage computes.

Creating a small file costs 0.2-1.4 ms on the ext4 machines we measured (``docs/performance.md``),
and a cold run creates one sidecar per artifact on top of the artifact itself. The time is spent in
the kernel with the GIL released, so in an ``experiment`` command run the stage runtime hands
each sidecar to one writer thread (``write_behind``) and goes on with the next stage.

What a writer thread must not change:

- **The artifact lock.** The exclusive lock taken before the artifact was written stays held
  until its sidecar is in place, so another process never sees the new artifact beside the old
  sidecar. The thread that took it (record locks are re-entrant per thread) releases it in
  ``settle``.
- **What this thread reads.** ``settle`` runs before this thread takes any artifact lock or reads
  any sidecar (``artifact_lock`` and ``read_sidecar`` call it), before the process forks, and at
  the end of the run, so at most one stage's sidecars are in flight and everything read after
  them sees them written. It also keeps lock ordering as it was: no new lock is taken while
  pending ones are held.
- **Errors.** A sidecar that cannot be written fails the run as ``CacheWriteError`` naming the
  artifact and the stage, raised by the next ``settle``. The artifact is then without a sidecar,
  which the next run treats as not cached; a process killed with writes in flight leaves the same.

Pending writes are kept per thread (a Dask worker runs several tasks of a process at once), and
one writer thread per process serves them in order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import CacheWriteError, SidecarWriteError

if TYPE_CHECKING:
    from .sidecars import Remembered

logger = logging.getLogger("curifactory_like.caching")

__all__ = ["has_pending", "settle", "settle_quietly", "write_behind"]


@dataclass
class _Pending:
    """One sidecar being written, and the artifact lock held until it is in place."""

    future: Future[Any]
    locks: contextlib.ExitStack
    path: str
    output: str
    stage: str
    record: str


_local = threading.local()
_writer: ThreadPoolExecutor | None = None
_writer_guard = threading.Lock()


def _pending() -> list[_Pending]:
    pending: list[_Pending] | None = getattr(_local, "pending", None)
    if pending is None:
        pending = _local.pending = []
    return pending


def _executor() -> ThreadPoolExecutor:
    global _writer
    with _writer_guard:
        if _writer is None:
            _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sidecar-writer")
        return _writer


def has_pending() -> bool:
    """Whether this thread has sidecars still being written."""
    return bool(getattr(_local, "pending", None))


def write_behind(
    metadata_path: str,
    text: str,
    remembered: Remembered,
    locks: contextlib.ExitStack,
    artifact: tuple[str, str, str],
) -> None:
    """Write an encoded sidecar (``base.encode_sidecar``) to ``metadata_path`` on the writer
    thread. ``locks`` holds the artifact's exclusive lock; ``settle`` closes it once the sidecar
    is written (or failed). ``artifact`` is (output, stage, record name), for the error."""
    from .base import write_sidecar_text

    future = _executor().submit(write_sidecar_text, metadata_path, text, remembered)
    _pending().append(_Pending(future, locks, metadata_path, *artifact))


def settle() -> None:
    """Wait for this thread's pending sidecars, release their artifact locks, and raise the
    first write that failed as ``SidecarWriteError`` (a ``CacheWriteError``)."""
    pending = getattr(_local, "pending", None)
    if not pending:
        return
    _local.pending = []
    failure: tuple[_Pending, BaseException] | None = None
    for item in pending:
        try:
            item.future.result()
        except BaseException as exc:  # noqa: BLE001 - reported below, after every lock is released
            if failure is None:
                failure = (item, exc)
        finally:
            item.locks.close()
    if failure is not None:
        failed, error = failure
        raise SidecarWriteError(
            f"the metadata sidecar of output '{failed.output}' of stage '{failed.stage}' of "
            f"{failed.record} could not be written to {failed.path} ({type(error).__name__}: "
            f"{error}); the artifact is kept but counts as not cached. Make sure the cache "
            "folder is writable and has free space, and that nothing else is at that path, "
            "then run again",
            failed.stage,
            failed.record,
        ) from error


def settle_quietly() -> None:
    """``settle`` on a path that is already failing: log a sidecar error instead of raising it."""
    try:
        settle()
    except CacheWriteError as exc:
        logger.error("%s", exc)


def _before_fork() -> None:
    """A child must not inherit a half-written sidecar or the writer's locks: finish them."""
    pending = getattr(_local, "pending", None)
    for item in pending or ():
        with contextlib.suppress(BaseException):
            item.future.result()


def _after_fork_in_child() -> None:
    """The writer thread does not exist in a forked child, nor do the parent's record locks."""
    global _writer, _local, _writer_guard
    _writer = None
    _writer_guard = threading.Lock()
    _local = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
