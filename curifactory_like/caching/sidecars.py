"""Reading ``_metadata.json`` sidecars once per process, and once per change across runs.

A run reads the same sidecar several times: the map pass checks the artifact's size against it
and keeps its metadata, and the execute pass reads it again for the artifact's registry row.
Parsing is what costs (~1 KB of JSON per artifact, thousands of artifacts), so the parsed
content is kept per path together with the file's identity (inode, size, modification time in
ns). Any rewrite goes through ``os.replace`` and so changes the inode; a changed file is always
parsed again. Callers get their own copy of the top-level dict and of its ``extra`` dict (the
parts cachers update in place); nested values are shared, also between sidecars with equal
nested values (the run block, the parameter set of a record, a stage's code parts), and must be
treated as read-only.

Across runs, ``save_index`` keeps the parsed sidecars of a cache folder in one file per cache
prefix (``.sidecar_index/<prefix>.pickle``), each with a digest of the bytes it was parsed from.
The next run loads it (``load_index``) and, for each sidecar it reads, still reads the file but
takes the parsed content from the index when the file's bytes have that digest: the parsing and
string sharing, ~0.3 s of a warm run of a thousand records, happen once per change instead of
once per run (design note 16). The index never replaces a sidecar: one that changed is parsed,
one that is gone is missing, as without it. Copying the cache (new inodes and times) keeps it
valid. It holds plain data only and is read with an unpickler that refuses every class and
function, so it cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import sys
from typing import Any

logger = logging.getLogger(__name__)

_PARSED: dict[str, tuple[tuple[int, int, int], Any, bytes]] = {}
"""Path -> (identity of the file, its parsed content, digest of its bytes)."""
_INDEXED: dict[str, tuple[bytes, Any]] = {}
"""Path -> (digest, parsed content) from a loaded index, until the path is read."""
_SHARED_LENGTH = 64
"""Strings up to this length are interned (checksums, previews and long values are not)."""
_CONTAINERS = (dict, list)


def _identity(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


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
        return _expanded(cached[1])
    with open(path, "rb") as infile:
        data = infile.read()
    digest = _digest(data)
    indexed = _INDEXED.pop(path, None)
    if indexed is not None and indexed[0] == digest:
        content = indexed[1]
    else:
        try:
            document = json.loads(data)
        except UnicodeDecodeError as exc:  # callers handle one error for an unreadable sidecar
            raise json.JSONDecodeError(f"not UTF-8 ({exc.reason})", repr(data[:40]), 0) from exc
        content = _compact(_shared_strings(document))
        _CHANGED.add(os.path.dirname(os.path.abspath(path)))
    _PARSED[path] = (identity, content, digest)
    return _expanded(content)


def _shared_strings(document: Any) -> Any:
    """``document`` with its keys and short strings interned and its nested dicts and lists
    shared with equal ones of other sidecars.

    Thousands of sidecars repeat the same keys and mostly the same values (stage, experiment,
    commit, parameter values, the run block), which ``json`` decodes into separate objects:
    ~6 KB of Python objects per sidecar at N=1000, most of it duplicates.
    """
    if type(document) is not dict:
        return _shared(document)
    # the leaf test is written out rather than in a helper: a call per scalar doubled the cost
    return {
        sys.intern(key) if type(key) is str else key: (
            sys.intern(item)
            if type(item) is str and len(item) <= _SHARED_LENGTH
            else _shared(item) if type(item) in _CONTAINERS else item
        )
        for key, item in document.items()
    }


_NESTED: dict[Any, Any] = {}
"""Nested dicts and lists handed out so far, by content: equal ones become one object."""


def _shared(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return sys.intern(value) if len(value) <= _SHARED_LENGTH else value
    if kind is not dict and kind is not list:
        return value
    # equal content of the same types: 1, 1.0 and True are equal but not interchangeable, and
    # neither are 0.0 and -0.0, so containers holding floats are not shared
    items = value.values() if kind is dict else value
    types = tuple(map(type, items))
    key: Any = None
    shared = None
    if float not in types:
        try:
            key = (kind, tuple(value.items()) if kind is dict else tuple(value), types)
            shared = _NESTED.get(key)
        except TypeError:  # holds a dict or list itself: share its parts only
            key = None
    if shared is None:
        if kind is dict:
            shared = {
                sys.intern(k) if type(k) is str else k: _shared(v) for k, v in value.items()
            }
        else:
            shared = [_shared(v) for v in value]
        if key is not None:
            _NESTED[key] = shared
    return shared


_ENCODER = json.JSONEncoder(default=str, separators=(", ", ": "))


def sidecar_text(payload: Any) -> str:
    """The sidecar's JSON text: one line per key, and per key of a nested dict, as
    ``json.dumps(payload, indent=2, default=str)`` lays it out; anything nested deeper stays on
    its key's line. Built from the C encoder's pieces: with ``indent`` the encoder is the
    pure-Python one, about twice as slow for a sidecar, written once per artifact."""
    if type(payload) is not dict or not all(type(key) is str for key in payload):
        return json.dumps(payload, indent=2, default=str)
    encode = _ENCODER.encode
    lines = []
    for key, value in payload.items():
        if type(value) is dict and value and all(type(inner) is str for inner in value):
            entries = ",\n    ".join(
                [f"{encode(inner)}: {encode(item)}" for inner, item in value.items()]
            )
            lines.append(f"{encode(key)}: {{\n    {entries}\n  }}")
        else:
            lines.append(f"{encode(key)}: {encode(value)}")
    return "{\n  " + ",\n  ".join(lines) + "\n}" if lines else "{}"


def remember_written(path: str, text: str, handle: Any, payload: Any) -> None:
    """Keep what was just written to ``handle`` for ``path`` (not yet moved into place) as the
    parsed content of ``path``: a later read, in this run or through the index in the next,
    need not parse the file again. ``handle`` must be flushed; its identity becomes the file's.

    ``payload`` (what ``text`` encodes) is kept itself, sharing its nested values, when it is
    plain JSON data, so parsing it back would give it again; otherwise ``text`` is parsed.
    """
    try:
        identity = _identity(os.fstat(handle.fileno()))
        content = _compact(
            payload if _plain_json(payload) else _shared_strings(json.loads(text))
        )
    except (OSError, ValueError):
        return
    _PARSED[path] = (identity, content, _digest(text.encode("utf-8")))
    _CHANGED.add(os.path.dirname(os.path.abspath(path)))


_JSON_SCALARS = (str, int, float, bool, type(None))


def _plain_json(value: Any) -> bool:
    """Whether ``json.loads(json.dumps(value))`` gives ``value`` back, equal and of the same
    types (dicts with string keys, lists, strings, numbers, booleans, None)."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return kind is not float or value == value  # NaN is not equal to itself after a trip
    if kind is dict:
        return all(type(key) is str and _plain_json(item) for key, item in value.items())
    if kind is list:
        return all(_plain_json(item) for item in value)
    return False


# -- the index across runs ---------------------------------------------------------------------

INDEX_FOLDER = ".sidecar_index"
_INDEX_FORMAT = 1
_CHANGED: set[str] = set()
"""Folders with a sidecar written by this process since the last ``save_index``."""
_FROM_INDEX: dict[str, int] = {}
"""Index file -> how many entries ``load_index`` took from it."""


class _PlainDataUnpickler(pickle.Unpickler):
    """Reads dicts, lists, tuples, strings and numbers; refuses any class or function."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"the sidecar index may not name {module}.{name}")


def index_path(cache_dir: str, prefix: str) -> str:
    """The index file of ``prefix``'s sidecars in ``cache_dir``."""
    return os.path.join(cache_dir, INDEX_FOLDER, f"{prefix}.pickle")


def load_index(cache_dir: str, prefix: str) -> int:
    """Load ``prefix``'s index of ``cache_dir``; return how many sidecars it describes.

    Its entries are used by ``read_sidecar`` for files whose bytes still match. A missing or
    unreadable index is no error (every sidecar is then parsed).
    """
    path = index_path(cache_dir, prefix)
    try:
        with open(path, "rb") as infile:
            index = _PlainDataUnpickler(infile).load()
        if not isinstance(index, dict) or index.get("format") != _INDEX_FORMAT:
            raise ValueError("not a sidecar index of this version")
        entries = index["entries"]
        loaded = {
            os.path.join(cache_dir, relative): (digest, content)
            for relative, (digest, content) in entries.items()
            if type(digest) is bytes and _is_compact(content)
        }
    except FileNotFoundError:
        return 0
    except Exception as exc:  # a damaged index is only a slower run
        logger.debug("Ignoring the sidecar index %s: %s", path, exc)
        return 0
    _INDEXED.update(loaded)
    _FROM_INDEX[path] = len(loaded)
    return len(loaded)


def save_index(cache_dir: str, prefix: str) -> bool:
    """Write the index of ``prefix``'s parsed sidecars in ``cache_dir``, if it changed.

    It holds every sidecar of the folder (and its subfolders) whose name starts with
    ``prefix_`` and whose file is still the one it was parsed from, plus the loaded entries
    this run did not need. Written atomically; when two runs write it at once, the loser's new
    entries are parsed again by the next run. Returns whether it was written.
    """
    from .atomic import atomic_open

    root = os.path.abspath(cache_dir)
    inside = [folder for folder in _CHANGED if folder == root or folder.startswith(root + os.sep)]
    path = index_path(cache_dir, prefix)
    if not inside and path in _FROM_INDEX:
        return False
    start = f"{prefix}_"
    entries: dict[str, Any] = {}
    for sidecar, (digest, content) in _INDEXED.items():
        relative = os.path.relpath(os.path.abspath(sidecar), root)
        if not relative.startswith(os.pardir) and os.path.exists(sidecar):
            entries[relative] = (digest, content)
    for sidecar, (identity, content, digest) in _PARSED.items():
        relative = os.path.relpath(os.path.abspath(sidecar), root)
        if relative.startswith(os.pardir) or not os.path.basename(relative).startswith(start):
            continue
        try:
            if _identity(os.stat(sidecar)) != identity:
                continue
        except OSError:
            continue
        entries[relative] = (digest, content)
    if not entries and path not in _FROM_INDEX:
        return False
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_open(path, "wb") as outfile:
            pickle.dump({"format": _INDEX_FORMAT, "entries": entries}, outfile, protocol=4)
    except OSError as exc:
        logger.debug("Could not write the sidecar index %s: %s", path, exc)
        return False
    _FROM_INDEX[path] = len(entries)
    _CHANGED.difference_update(inside)
    return True


def forget_sidecars() -> None:
    """Drop every remembered sidecar (tests, long-lived processes)."""
    _PARSED.clear()
    _INDEXED.clear()
    _KEY_SETS.clear()
    _NESTED.clear()
    _CHANGED.clear()
    _FROM_INDEX.clear()


_KEY_SETS: dict[tuple[str, ...], tuple[str, ...]] = {}
"""One tuple per distinct set of top-level keys (the same for thousands of sidecars)."""


def _compact(document: Any) -> Any:
    """How a parsed sidecar is kept: a top-level dict becomes ``(keys, values)``, the keys
    tuple shared by every sidecar with the same keys (~250 bytes instead of a ~1.2 KB dict),
    and its ``extra`` dict copied, since the cacher that wrote it may update its own."""
    if type(document) is not dict:
        return document
    keys = tuple(document)
    keys = _KEY_SETS.setdefault(keys, keys)
    values = tuple(document.values())
    if "extra" in document and type(document["extra"]) is dict:
        position = keys.index("extra")
        values = (*values[:position], dict(document["extra"]), *values[position + 1 :])
    return (keys, values)


def _is_compact(content: Any) -> bool:
    return (
        type(content) is tuple
        and len(content) == 2
        and type(content[0]) is tuple
        and type(content[1]) is tuple
        and len(content[0]) == len(content[1])
    )


def _expanded(content: Any) -> Any:
    """A caller's own copy: a new top-level dict and ``extra`` dict; nested values shared."""
    if type(content) is not tuple:
        return content
    document = dict(zip(content[0], content[1], strict=True))
    extra = document.get("extra")
    if type(extra) is dict:
        document["extra"] = dict(extra)
    return document
