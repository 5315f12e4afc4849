"""``pip freeze`` once per environment change instead of once per run.

Reading the metadata of every installed distribution costs ~0.1-0.3 s, on every run, for a
text that changes only when packages are installed, removed or upgraded. Each of those adds
or removes a ``*.dist-info`` (or ``.egg-info``/``.pth``) entry in a ``sys.path`` directory,
which changes that directory's modification time. The text is therefore kept in
``<manager_cache_path>/.pip_freeze.json`` together with the interpreter, ``sys.path`` and the
modification time of every ``sys.path`` entry but the project directory, and recomputed whenever
any of them differs.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

from . import provenance
from .caching.atomic import atomic_open

CACHE_NAME = ".pip_freeze.json"


def environment_key() -> list[Any]:
    """The interpreter, and each ``sys.path`` entry with its modification time (ns).

    The working directory (the project) is listed without its time: a run creates and removes
    its output folders there, and distributions are not installed into a project's root.
    """
    entries: list[Any] = [sys.executable, sys.version]
    cwd = os.getcwd()
    for entry in sys.path:
        path = os.path.abspath(entry or cwd)
        mtime = None
        if path != cwd:
            with contextlib.suppress(OSError):
                mtime = os.stat(path).st_mtime_ns
        entries.append([path, mtime])
    return entries


def cached_pip_freeze(cache_dir: str | None) -> str:
    """``provenance.pip_freeze()``, reused from ``cache_dir`` while the environment is unchanged."""
    if not cache_dir:
        return provenance.pip_freeze()
    cache_path = os.path.join(cache_dir, CACHE_NAME)
    key = environment_key()
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        with open(cache_path, encoding="utf-8") as infile:
            cached = json.load(infile)
        if cached["key"] == key and isinstance(cached["text"], str):
            return cached["text"]
    text = provenance.pip_freeze()
    with contextlib.suppress(OSError):
        os.makedirs(cache_dir, exist_ok=True)
        with atomic_open(cache_path, "w", encoding="utf-8") as outfile:
            json.dump({"key": key, "text": text}, outfile)
    return text
