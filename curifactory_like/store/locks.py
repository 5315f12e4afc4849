"""How the run registry locks: SQLite's own locks, used so that concurrent runs never collide.

* WAL journaling: readers never wait for the writer, and the writer never waits for readers.
* Every write is one ``BEGIN IMMEDIATE`` transaction (:func:`immediate`): it takes the database
  write lock *before* reading, so read-then-insert (e.g. allocating the next run number) is atomic
  across processes.
* A generous ``busy_timeout`` makes a second writer wait for the first instead of failing.
* :class:`SharedConnection` gives each process its own connection (a connection inherited through
  ``fork`` is never used or closed by the child) and serialises the threads that share it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import faults
from ..errors import CurifactoryWarning, RunStoreError

__all__ = ["BUSY_TIMEOUT_SECONDS", "SharedConnection", "connect", "immediate"]

BUSY_TIMEOUT_SECONDS = 30.0
"""How long a write waits for another process's transaction before failing."""
PAGE_CACHE_KIB = 512
"""SQLite's page cache per connection (its default is 2,000 KiB)."""


def connect(path: Path, timeout: float = BUSY_TIMEOUT_SECONDS) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode with WAL, a busy timeout and foreign keys enforced."""
    conn = sqlite3.connect(path, timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        deadline = time.monotonic() + timeout
        while True:  # switching a new file to WAL can race with another process doing the same
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    except BaseException:
        conn.close()
        raise
    if str(mode).lower() != "wal":
        warnings.warn(
            f"the SQLite database {path} cannot use WAL journaling (got {mode!r}); "
            "concurrent runs will wait on each other more often",
            CurifactoryWarning,
            stacklevel=2,
        )
    return conn


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any (none after COMMIT or an automatic rollback)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the body in one ``BEGIN IMMEDIATE`` transaction: commit on success, else roll back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        faults.checkpoint("registry.commit")
        conn.execute("COMMIT")
        faults.checkpoint("registry.committed")
    finally:
        rollback(conn)


class SharedConnection:
    """A lazily opened connection per process, shared by that process's threads.

    ``setup`` runs once on every newly opened connection (e.g. to migrate the schema). SQLite
    errors surface as :class:`RunStoreError` naming the action and the file.
    """

    def __init__(self, path: Path, setup: Callable[[sqlite3.Connection], None]) -> None:
        self.path = path
        self._setup = setup
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._inherited: list[sqlite3.Connection] = []  # never closed: they belong to the parent
        self._closed = False

    def _connection(self) -> sqlite3.Connection:
        """Return this process's connection, opening it when needed."""
        if self._closed:
            raise RunStoreError(f"the run registry {self.path} is closed; open a new RunStore")
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:  # inherited through fork: leave it to the parent
            self._inherited.append(self._conn)
            self._conn = None
        self._pid = os.getpid()
        try:
            conn = connect(self.path)
            try:
                self._setup(conn)
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as exc:
            raise RunStoreError(
                f"cannot open the run registry {self.path}: {exc}; if the file is not a "
                "curifactory_like store.db, move it away"
            ) from exc
        self._conn = conn
        return conn

    def open(self) -> None:
        """Open (and set up) the connection now rather than on first use."""
        with self._lock:
            self._connection()

    @contextmanager
    def write(self, action: str) -> Iterator[sqlite3.Connection]:
        """Run the body as one ``BEGIN IMMEDIATE`` transaction described by ``action``."""
        with self._lock:
            try:
                with immediate(self._connection()) as conn:
                    yield conn
            except sqlite3.Error as exc:
                hint = (
                    "; another process held the write lock too long" if "locked" in str(exc) else ""
                )
                raise RunStoreError(
                    f"could not {action} in the run registry {self.path}: {exc}{hint}"
                ) from exc

    @contextmanager
    def read(self, action: str) -> Iterator[sqlite3.Connection]:
        """Give the body the connection for reading (each statement sees a consistent snapshot)."""
        with self._lock:
            try:
                yield self._connection()
            except sqlite3.Error as exc:
                raise RunStoreError(
                    f"could not {action} in the run registry {self.path}: {exc}"
                ) from exc

    def close(self) -> None:
        """Close this process's connection; later use raises RunStoreError. Idempotent."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            self._closed = True
