"""``pip freeze`` once per environment change instead of once per run.

Reading the metadata of every installed distribution costs ~0.1-0.3 s, on every run, for a
text that changes only when packages are installed, removed or upgraded. Each of those adds
or removes a ``*.dist-info`` (or ``.egg-info``/``.pth``) entry in a ``sys.path`` directory,
which changes that directory's modification time. The text is therefore kept in
``<manager_cache_path>/.pip_freeze.json`` together with the interpreter, ``sys.path`` and the
modification time of every ``sys.path`` entry but the project directory, and recomputed whenever
any of them differs. A copy is kept in a per-user folder of the temporary directory (created
private, used only when it belongs to the current user), so a project whose ``data/`` was just
removed (a cold run) reuses the freeze of an unchanged environment too.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import tempfile
from typing import Any

from . import provenance
from .caching.atomic import atomic_open

CACHE_NAME = ".pip_freeze.json"


def environment_key() -> list[Any]:
    """The interpreter, and each ``sys.path`` entry with its modification time (ns).

    The interpreter is its resolved path: the ``experiment`` script's ``python3.11`` and a
    ``python`` symlink to it are one environment. The working directory (the project) is left
    out: a run creates and removes its output folders there, distributions are not installed
    into a project's root, and every project of an environment shares the per-user copy. An
    entry that is no file or folder (an import hook's marker, such as an editable install's) is
    kept as written, not resolved against the working directory, for the same reason.
    """
    entries: list[Any] = [os.path.realpath(sys.executable), sys.version]
    cwd = os.getcwd()
    for entry in sys.path:
        path = os.path.abspath(entry or cwd)
        if path == cwd:
            continue
        try:
            entries.append([path, os.stat(path).st_mtime_ns])
        except OSError:
            entries.append([entry, None])
    return entries


def user_cache_dir() -> str | None:
    """The per-user folder for the shared copy, or ``None`` when it is not safely ours."""
    path = os.path.join(tempfile.gettempdir(), f"curifactory_like-{_user_id()}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        return None
    if info.st_mode & 0o077:
        return None
    return path


def _user_id() -> str:
    if hasattr(os, "getuid"):
        return str(os.getuid())
    return os.environ.get("USERNAME", "user")


def _read(cache_path: str, key: list[Any]) -> str | None:
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        with open(cache_path, encoding="utf-8") as infile:
            cached = json.load(infile)
        if cached["key"] == key and isinstance(cached["text"], str):
            return str(cached["text"])
    return None


def _write(cache_dir: str, key: list[Any], text: str) -> None:
    with contextlib.suppress(OSError):
        os.makedirs(cache_dir, exist_ok=True)
        with atomic_open(os.path.join(cache_dir, CACHE_NAME), "w", encoding="utf-8") as outfile:
            json.dump({"key": key, "text": text}, outfile)


def cached_pip_freeze(cache_dir: str | None, shared: bool = True) -> str:
    """``provenance.pip_freeze()``, reused from ``cache_dir`` (else from the per-user copy when
    ``shared``) while the environment is unchanged."""
    if not cache_dir:
        return provenance.pip_freeze()
    key = environment_key()
    text = _read(os.path.join(cache_dir, CACHE_NAME), key)
    if text is not None:
        return text
    user_dir = user_cache_dir() if shared else None
    if user_dir is not None:
        text = _read(os.path.join(user_dir, CACHE_NAME), key)
    if text is None:
        text = provenance.pip_freeze()
        if user_dir is not None:
            _write(user_dir, key, text)
    _write(cache_dir, key, text)
    return text
