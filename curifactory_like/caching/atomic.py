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
import os
import uuid
from collections.abc import Iterator
from typing import IO, Any

from .. import faults

CHECKSUM_ALGORITHM = "sha256"
_CHUNK = 1 << 20


def temporary_sibling(path: str) -> str:
    """A fresh temporary path beside ``path`` keeping its extension (pandas reads it).

    The name is unique per process and call; the file itself is created by the writer.
    """
    directory, base = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _, ext = os.path.splitext(base)
    return os.path.join(directory, f".{base}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{ext}")


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
