"""What a killed run leaves in the cache folder, and when it is safe to remove.

Two kinds of dot entries are written by a run and removed by the same run when it ends well:

* the **temporary file of an atomic write** (``caching/atomic.py``):
  ``.<name>.<pid>.<12 hex>.tmp<ext>``, moved into place when complete;
* the **working folder of a ``--parallel`` run** (``experiment.py``):
  ``.<run reference>-<8 characters>``, where workers hand outputs without cachers to the parent.

A process killed in the middle leaves them behind. Nothing ever reads them, so they only take
space; ``experiment clean`` removes them once their writer is certainly gone: a temporary file
when the process named in it is not alive on this machine, a working folder when its run is not
running (see ``cleaning.is_running``), and either only when nothing in it changed for
``QUIET_SECONDS``. The quiet period covers a cache shared between machines, where a process id
says nothing: a write in progress keeps changing its file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable

__all__ = ["QUIET_SECONDS", "Leftover", "identify", "keep_reason", "process_alive"]

QUIET_SECONDS = 15 * 60
"""A leftover is removed only if nothing in it changed for this long."""

_TEMPORARY_FILE = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{12}\.tmp[^/]*$")
_WORKING_FOLDER = re.compile(r"^\.(?P<reference>.+_\d+_\d{4}-\d\d-\d\d-T\d{6})-[a-z0-9_]{8}$")


@dataclasses.dataclass(frozen=True)
class Leftover:
    """A dot entry of the cache folder that a run writes and removes itself."""

    kind: str
    """``"temporary file"`` or ``"working folder"``."""
    pid: int | None = None
    """The writing process (temporary files)."""
    reference: str | None = None
    """The run it belongs to (working folders)."""


def identify(name: str, is_dir: bool) -> Leftover | None:
    """The leftover an entry called ``name`` would be, or None if a run does not write it."""
    if not is_dir:
        match = _TEMPORARY_FILE.match(name)
        return Leftover("temporary file", pid=int(match["pid"])) if match else None
    match = _WORKING_FOLDER.match(name)
    return Leftover("working folder", reference=match["reference"]) if match else None


def keep_reason(
    leftover: Leftover, modified: float, run_is_running: Callable[[str], bool]
) -> str | None:
    """Why ``leftover`` (last changed at ``modified``) must stay, or None if it can go."""
    quiet = time.time() - modified
    if leftover.pid is not None and process_alive(leftover.pid):
        return f"{leftover.kind} of live process {leftover.pid}"
    if leftover.reference is not None and run_is_running(leftover.reference):
        return f"{leftover.kind} of running run {leftover.reference}"
    if quiet < QUIET_SECONDS:
        return f"{leftover.kind} changed {quiet:.0f} s ago; removable after {QUIET_SECONDS} s"
    return None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (also when another user owns it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:
        return False
    return True
