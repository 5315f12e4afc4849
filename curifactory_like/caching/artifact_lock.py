"""Advisory locks that keep a reader from judging an artifact while another process writes it.

A stage's artifact and its sidecar are two files, each replaced atomically, but not together:
between the two renames another process would see the new artifact beside the old (or no)
sidecar and recompute it with a spurious integrity warning. The writer therefore holds an
exclusive lock per artifact from before the artifact is written until its sidecar is in place,
and a reader takes the shared lock while it checks and loads the artifact.

Lock files live in ``<manager_cache_path>/.locks/`` (named by a hash of the artifact's absolute
path), never beside the artifacts, and are never deleted (deleting a lock file another process
waits on would split the lock in two). Without ``fcntl`` (Windows) the locks are no-ops.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FOLDER = ".locks"


def lock_path(manager_cache_path: str, artifact_path: str) -> str:
    """The lock file guarding ``artifact_path``."""
    digest = hashlib.sha1(os.path.abspath(artifact_path).encode()).hexdigest()[:20]
    return os.path.join(manager_cache_path, LOCK_FOLDER, f"{digest}.lock")


@contextlib.contextmanager
def artifact_lock(
    manager_cache_path: str | None, artifact_paths: list[str], exclusive: bool
) -> Iterator[None]:
    """Hold the locks of ``artifact_paths`` (sorted, so two holders never deadlock)."""
    if fcntl is None or not manager_cache_path or not artifact_paths:
        yield
        return
    folder = os.path.join(manager_cache_path, LOCK_FOLDER)
    os.makedirs(folder, exist_ok=True)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    with contextlib.ExitStack() as stack:
        for path in sorted({lock_path(manager_cache_path, p) for p in artifact_paths}):
            handle = stack.enter_context(open(path, "a", encoding="utf-8"))
            fcntl.flock(handle.fileno(), mode)
        yield
