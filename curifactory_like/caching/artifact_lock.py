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
descriptor of the file drops them all. So each process keeps the file open while any of its
locks is held (and up to ``MAX_IDLE_LOCK_FILES`` idle ones), and keeps a table of the locks it
holds, with one re-entrant thread lock per artifact; the record lock is taken by the first
holder and released by the last, and the entry is dropped when no thread needs it. Without ``fcntl`` (Windows) the
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
    users: int = 0
    """Threads holding or waiting for it; the entry is dropped when the last one is done."""


MAX_IDLE_LOCK_FILES = 16
"""Lock files kept open while none of their locks is held (one per cache a process used)."""


class _ProcessLocks:
    """The lock files this process has open and the artifact locks it holds."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.descriptors: dict[str, int] = {}
        self.file_users: dict[str, int] = {}
        self.held: dict[tuple[str, int], _Held] = {}

    def open_file(self, path: str) -> int:
        """The descriptor of the lock file ``path``, counted as in use until ``close_file``."""
        with self.guard:
            fd = self.descriptors.get(path)
            if fd is None:
                self._close_idle_files()
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                self.descriptors[path] = fd
            self.file_users[path] = self.file_users.get(path, 0) + 1
            return fd

    def close_file(self, path: str) -> None:
        with self.guard:
            self.file_users[path] -= 1
            if not self.file_users[path]:
                del self.file_users[path]

    def _close_idle_files(self) -> None:
        """Close lock files nobody in this process uses (closing one drops this process's
        record locks on it, so only files without users), once there are too many."""
        idle = [path for path in self.descriptors if path not in self.file_users]
        if len(idle) < MAX_IDLE_LOCK_FILES:
            return
        for path in idle:
            os.close(self.descriptors.pop(path))

    def enter(self, key: tuple[str, int]) -> _Held:
        with self.guard:
            held = self.held.setdefault(key, _Held())
            held.users += 1
            return held

    def leave(self, key: tuple[str, int], held: _Held) -> None:
        with self.guard:
            held.users -= 1
            if not held.users and self.held.get(key) is held:
                del self.held[key]


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
    file_key = os.path.abspath(lock_path(manager_cache_path))
    try:
        fd = table.open_file(file_key)
    except OSError:
        if exclusive:
            raise
        # a reader that cannot create the lock file (a read-only cache) reads without it:
        # whoever could be rewriting the artifact can write there, this process cannot
        yield
        return
    try:
        with contextlib.ExitStack() as stack:
            for offset in sorted({lock_offset(p) for p in artifact_paths}):
                stack.enter_context(_hold(table, fd, (file_key, offset), exclusive))
            yield
    finally:
        table.close_file(file_key)


@contextlib.contextmanager
def _hold(table: _ProcessLocks, fd: int, key: tuple[str, int], exclusive: bool) -> Iterator[None]:
    held = table.enter(key)
    try:
        with held.thread_lock:  # other threads of this process wait here; this thread re-enters
            yield from _locked(held, fd, key[1], exclusive)
    finally:
        table.leave(key, held)


def _locked(held: _Held, fd: int, offset: int, exclusive: bool) -> Iterator[None]:
    """Take (or re-enter) the record lock at ``offset``; give it back when the caller is done."""
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
