"""Reading ``_metadata.json`` sidecars once per process.

A run reads the same sidecar several times: the map pass checks the artifact's size against it
and keeps its metadata, and the execute pass reads it again for the artifact's registry row.
Parsing is what costs (~1 KB of JSON per artifact, thousands of artifacts), so the parsed
content is kept per path together with the file's identity (inode, size, modification time in
ns). Any rewrite goes through ``os.replace`` and so changes the inode; a changed file is always
parsed again. Callers get their own copy of the top-level dict and of its ``extra`` dict (the
parts cachers update in place); nested values are shared and must be treated as read-only.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

_PARSED: dict[str, tuple[tuple[int, int, int], Any]] = {}
_SHARED_LENGTH = 64
"""Strings up to this length are interned (checksums, previews and long values are not)."""
_CONTAINERS = (dict, list)


def _identity(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def read_sidecar(path: str) -> Any:
    """The parsed JSON at ``path``; ``None`` if the file does not exist.

    Raises ``json.JSONDecodeError`` (and ``OSError`` other than a missing file) like
    ``json.load`` would.
    """
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        _PARSED.pop(path, None)
        return None
    identity = _identity(stat)
    cached = _PARSED.get(path)
    if cached is not None and cached[0] == identity:
        return _copy(cached[1])
    with open(path, encoding="utf-8") as infile:
        content = _shared_strings(json.load(infile))
    _PARSED[path] = (identity, content)
    return _copy(content)


def _shared_strings(value: Any) -> Any:
    """``value`` with its keys and short strings interned.

    Thousands of sidecars repeat the same keys and mostly the same values (stage, experiment,
    commit, parameter values), which ``json`` decodes into separate string objects: ~6 KB of
    Python objects per sidecar at N=1000, about half of it duplicate strings.
    """
    # the leaf test is written out in both comprehensions rather than in a helper: a call per
    # scalar doubled the cost of parsing
    if type(value) is dict:
        return {
            sys.intern(key) if type(key) is str else key: (
                sys.intern(item)
                if type(item) is str and len(item) <= _SHARED_LENGTH
                else _shared_strings(item) if type(item) in _CONTAINERS else item
            )
            for key, item in value.items()
        }
    if type(value) is list:
        return [
            sys.intern(item)
            if type(item) is str and len(item) <= _SHARED_LENGTH
            else _shared_strings(item) if type(item) in _CONTAINERS else item
            for item in value
        ]
    if type(value) is str and len(value) <= _SHARED_LENGTH:
        return sys.intern(value)
    return value


def forget_sidecars() -> None:
    """Drop every remembered sidecar (tests, long-lived processes)."""
    _PARSED.clear()


def _copy(content: Any) -> Any:
    if not isinstance(content, dict):
        return content
    copied = dict(content)
    extra = copied.get("extra")
    if isinstance(extra, dict):
        copied["extra"] = dict(extra)
    return copied
