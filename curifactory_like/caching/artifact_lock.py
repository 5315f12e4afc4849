"""Advisory locks that keep a reader from judging an artifact while another process writes it.

A stage's artifact and its sidecar are two files, each replaced atomically, but not together:
between the two renames another process would see the new artifact beside the old (or no)
sidecar and recompute it with a spurious integrity warning. The writer therefore holds an
exclusive lock per artifact from before the artifact is written until its sidecar is in place,
and a reader takes the shared lock while it checks and loads the artifact.

Every artifact's lock is one byte of a single lock file, ``<manager_cache_path>/.locks/
artifacts.lock``, at an offset given by a hash of the artifact's absolute path (POSIX record
locks, ``fcntl.lockf``). One lock file per artifact would cost a file creation per artifact
written, which on a journalling filesystem under write load costs as much as writing a small
artifact (see docs/performance.md); the byte-range locks keep per-artifact granularity with one
file per cache. The file is never deleted (deleting a lock file another process waits on would
split the lock in two).

Record locks belong to a process, not to a file descriptor: they never conflict between the
threads of one process, a nested lock would silently convert the outer one, and closing any
descriptor of the file drops them all. So each process keeps the file open for its lifetime and
keeps a table of the locks it holds, with one re-entrant thread lock per artifact; the record
lock is taken by the first holder and released by the last. Without ``fcntl`` (Windows) the
locks are no-ops.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FOLDER = ".locks"
LOCK_FILE = "artifacts.lock"


def lock_path(manager_cache_path: str) -> str:
    """The lock file holding the locks of every artifact under ``manager_cache_path``."""
    return os.path.join(manager_cache_path, LOCK_FOLDER, LOCK_FILE)


def lock_offset(artifact_path: str) -> int:
    """The byte of the lock file that is ``artifact_path``'s lock (48 bits of a sha1)."""
    return int(hashlib.sha1(os.path.abspath(artifact_path).encode()).hexdigest()[:12], 16)


@dataclass
class _Held:
    """This process's hold on one artifact lock."""

    thread_lock: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    exclusive: bool = False


class _ProcessLocks:
    """The lock files this process has open and the artifact locks it holds."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.descriptors: dict[str, int] = {}
        self.held: dict[tuple[str, int], _Held] = {}

    def descriptor(self, manager_cache_path: str) -> int:
        path = os.path.abspath(lock_path(manager_cache_path))
        with self.guard:
            fd = self.descriptors.get(path)
            if fd is None:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                self.descriptors[path] = fd
            return fd

    def entry(self, key: tuple[str, int]) -> _Held:
        with self.guard:
            return self.held.setdefault(key, _Held())


_locks = _ProcessLocks()


def _forget_after_fork() -> None:
    """A forked child holds none of its parent's record locks (and must not close the parent's
    descriptors, which would be harmless but pointless): start from an empty table."""
    global _locks
    _locks = _ProcessLocks()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


@contextlib.contextmanager
def artifact_lock(
    manager_cache_path: str | None, artifact_paths: list[str], exclusive: bool
) -> Iterator[None]:
    """Hold the locks of ``artifact_paths`` (in offset order, so two holders never deadlock)."""
    if fcntl is None or not manager_cache_path or not artifact_paths:
        yield
        return
    table = _locks
    fd = table.descriptor(manager_cache_path)
    file_key = os.path.abspath(lock_path(manager_cache_path))
    with contextlib.ExitStack() as stack:
        for offset in sorted({lock_offset(p) for p in artifact_paths}):
            stack.enter_context(_hold(table, fd, (file_key, offset), exclusive))
        yield


@contextlib.contextmanager
def _hold(table: _ProcessLocks, fd: int, key: tuple[str, int], exclusive: bool) -> Iterator[None]:
    held = table.entry(key)
    offset = key[1]
    with held.thread_lock:  # other threads of this process wait here; this thread re-enters
        upgraded = False
        if held.depth == 0:
            fcntl.lockf(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, 1, offset)
            held.exclusive = exclusive
        elif exclusive and not held.exclusive:
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, offset)
            held.exclusive = upgraded = True
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)
                held.exclusive = False
            elif upgraded:
                fcntl.lockf(fd, fcntl.LOCK_SH, 1, offset)
                held.exclusive = False
