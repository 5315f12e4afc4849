"""Crash-safe file writes and integrity checksums.

Every cache write goes to a temporary file in the destination's directory and is moved into
place with ``os.replace``, so a reader sees the old file or the new one, never half of one,
whenever the writing process dies. Files are not fsync'ed: that guards against a power loss
rather than a killed process, costs a disk flush per artifact, and a file torn by a power loss
still fails its sidecar checksum and is recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import uuid
from collections.abc import Iterator
from typing import IO, Any

from .. import faults

CHECKSUM_ALGORITHM = "sha256"
_CHUNK = 1 << 20


class _TemporaryNames:
    """The ``<pid>.<12 hex>`` part of temporary-file names (``leftovers.py`` parses it): 4 hex
    digits drawn once per process (again in a forked child) and an 8-digit counter. A uuid4 per
    name cost a ``getrandom`` call and an object per cache write."""

    def __init__(self) -> None:
        self.prefix = f"{os.getpid()}.{uuid.uuid4().hex[:4]}"
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFF:08x}"


_names = _TemporaryNames()


def _renew_names_after_fork() -> None:
    global _names
    _names = _TemporaryNames()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_names_after_fork)


def temporary_sibling(path: str) -> str:
    """A fresh temporary path beside ``path`` keeping its extension (pandas reads it).

    The name is unique per process and call; the file itself is created by the writer.
    """
    directory, base = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):  # one stat; makedirs costs three system calls
        os.makedirs(directory, exist_ok=True)
    _, ext = os.path.splitext(base)
    return os.path.join(directory, f".{base}.{_names.next()}.tmp{ext}")


def commit_file(tmp_path: str, path: str) -> None:
    """Move a finished temporary file into place (it keeps the mode a new file gets)."""
    os.replace(tmp_path, path)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path to write to; on success it replaces ``path``, on error it is removed."""
    tmp = temporary_sibling(path)
    try:
        yield tmp
        faults.checkpoint("atomic.replace")
        commit_file(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open()`` for writing whose result appears at ``path`` only once fully written."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def file_checksum(path: str) -> str:
    """``sha256:<hex>`` of a file, or of every file under a directory (names included)."""
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                digest.update(os.path.relpath(full, path).encode())
                _update_from_file(digest, full)
    else:
        _update_from_file(digest, path)
    return f"{CHECKSUM_ALGORITHM}:{digest.hexdigest()}"


def _update_from_file(digest: Any, path: str) -> None:
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)


def path_size(path: str) -> int:
    """Size in bytes of a file, or the total of the files under a directory."""
    if os.path.isdir(path):
        return sum(
            os.path.getsize(os.path.join(root, name))
            for root, _, files in os.walk(path)
            for name in files
        )
    return os.path.getsize(path)
