"""File modes: nothing a run writes is world-writable, whatever the process umask.

Files are created with the usual ``0o666``/``0o777`` requests filtered by the umask, so under a
umask of ``000`` every artifact, sidecar, registry, log and report would be writable by every
user of the machine. :func:`forbid_world_writable` adds "others may not write" to the umask of
the running process (a no-op under the common ``022`` / ``002`` / ``077``); ``run_experiment``
calls it, so the CLI, the API and worker processes forked by ``--parallel`` all inherit it.
"""

from __future__ import annotations

import os

__all__ = ["forbid_world_writable"]


def forbid_world_writable() -> int:
    """Add ``o-w`` to the process umask and return the umask it had before."""
    previous = os.umask(0o777)  # the most restrictive value while the old one is read
    os.umask(previous | 0o002)
    return previous
