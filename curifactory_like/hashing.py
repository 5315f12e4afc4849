"""Parameter-set hashing: a canonical, type-aware encoding, and curifactory's legacy hash.

Two modes, chosen by ``hash_mode`` in ``curifactory_config.json``:

``v1`` (default)
    Every hashed field is encoded into one tagged, canonical JSON structure
    (``["params", [[field, encoding], ...]]`` sorted by field name), and the SHA-256 of that text,
    cut to 32 hex characters, is the hash. numpy arrays and pandas objects are hashed by content,
    callables by module + qualified name (lambdas also by their code), ``functools.partial`` by
    function and arguments, and a value whose only text is a default ``<object at 0x...>`` repr is
    rejected with an error that names the field.

``legacy``
    curifactory's own hash: the sum of ``md5(field + repr(value))`` integers as hex. Use it to
    keep a curifactory cache usable.

Both modes keep curifactory's rules: ``name``, ``hash``, ``overwrite`` and
``hash_representations`` never count; ``None`` values are skipped (so a new field defaulting to
``None`` keeps old hashes); ``hash_representations`` maps a field to a function
``(param_set, value) -> representation`` or to ``None`` (field ignored); nested dataclasses are
hashed field by field with their own rules; class names are not part of the hash, so renaming a
parameter class does not invalidate a cache. A computed hash is stored on the parameter set and
reused (``param_set.hash``), as curifactory does.
"""

from __future__ import annotations

import datetime
import enum
import functools
import hashlib
import json
import math
import os
import pathlib
from collections.abc import Mapping
from dataclasses import field, fields, is_dataclass
from typing import Any

from .errors import UnhashableParameterError

PARAMETERS_BLACKLIST = ["name", "hash", "overwrite", "hash_representations"]
"""Fields of ExperimentParameters that never count towards the hash."""

HASH_WIDTH = 32
"""Hex characters in a v1 hash (128 bits, the width of curifactory's md5 hashes)."""

_active_mode: str | None = None


def set_hash_mode(mode: str | None) -> None:
    """Select ``"v1"`` or ``"legacy"`` hashing for this process (``None``: read the config)."""
    global _active_mode
    if mode not in (None, "v1", "legacy"):
        raise ValueError(f"unknown hash mode {mode!r}; use 'v1' or 'legacy'")
    _active_mode = mode


def active_hash_mode() -> str:
    """The hash mode in force: the one set by the manager, else the project configuration's."""
    if _active_mode is not None:
        return _active_mode
    from . import utils

    return str(utils.get_configuration().get("hash_mode", "v1"))


def set_hash_functions(*args: Any, **kwargs: Any) -> Any:
    """Build the ``hash_representations`` dataclass field from a dict and/or keyword functions.

    Each value is a function ``(param_set, value) -> representation`` or ``None`` to leave the
    field out of the hash (for operational parameters such as a worker count).
    """
    if args:
        if not isinstance(args[0], dict):
            raise ValueError(
                "If providing a positional arg to set_hash_functions, it must be a dictionary."
            )
        base = dict(args[0])
        return field(default_factory=lambda: {**base, **kwargs}, repr=False)
    return field(default_factory=lambda: dict(**kwargs), repr=False)


# --------------------------------------------------------------------------- explanation


def get_parameter_hash_value(param_set: Any, param_name: str) -> tuple[str, Any]:
    """Return ``(strategy, representation)`` for one field, as curifactory's dry hash does."""
    value = getattr(param_set, param_name)
    if param_name in PARAMETERS_BLACKLIST:
        return ("SKIPPED: blacklist", None)
    representations = getattr(param_set, "hash_representations", None)
    if isinstance(representations, Mapping) and param_name in representations:
        function = representations[param_name]
        if function is None:
            return ("SKIPPED: set to None in hash_representations", None)
        return (
            f"param_set.hash_representations['{param_name}'](param_set, {param_name})",
            function(param_set, value),
        )
    if value is None:
        return ("SKIPPED: value is None", None)
    if is_dataclass(value) and not isinstance(value, type):
        return (
            f"get_param_set_hash_values(param_set, {param_name})",
            get_param_set_hash_values(value),
        )
    if active_hash_mode() == "legacy":
        if callable(value):
            return (f"{param_name}.__qualname__", value.__qualname__)
        return (f"repr({param_name})", repr(value))
    return _v1_strategy(param_name, value)


def _v1_strategy(param_name: str, value: Any) -> tuple[str, Any]:
    """The v1 explanation: ``repr`` for plain values, a named strategy for everything else."""
    if isinstance(value, _PLAIN_TYPES):
        return (f"repr({param_name})", repr(value))
    encoded = encode_value(value, param_name)
    kind = encoded[0] if isinstance(encoded, list) and encoded else "value"
    if kind in ("ndarray", "pandas"):
        return (f"content_hash({param_name})", _digest(encoded))
    if kind in ("callable", "lambda", "partial", "type"):
        return (f"callable_identity({param_name})", _describe_callable(value))
    return (f"canonical({param_name})", json.dumps(encoded, sort_keys=True))


def get_param_set_hash_values(param_set: Any) -> dict[str, tuple[str, Any]]:
    """The ``(strategy, representation)`` of every field of a parameter set."""
    return {f.name: get_parameter_hash_value(param_set, f.name) for f in fields(param_set)}


def _recorded_hash_values(param_set: Any) -> dict[str, tuple[str, Any]]:
    """``get_param_set_hash_values`` of a set whose hash is computed, worked out once for the
    registry row and the report (never used to compute a hash). Treat it as read-only."""
    return _once_per_hashed_set(_HASH_VALUES, param_set, get_param_set_hash_values)


def param_set_string_hash_representations(param_set: Any) -> dict[str, Any]:
    """A JSON-ready view of a parameter set as hashed, with ignored fields under IGNORED_PARAMS.

    For a set whose hash is computed it is worked out once and shared: treat it as read-only.
    """
    return _once_per_hashed_set(_REPRESENTATIONS, param_set, _string_hash_representations)


_REPRESENTATIONS: dict[tuple[int, str, str, str], Any] = {}
"""Representations of hashed parameter sets, by (object id, hash, name, hash mode). The sidecars,
the registry and the report each need one per set; the hash stands for the hashed fields."""
_HASH_VALUES: dict[tuple[int, str, str, str], Any] = {}
_MEMO_LIMIT = 100_000
"""Entries kept before a memo starts over (a long notebook session)."""


def _once_per_hashed_set(
    memo: dict[tuple[int, str, str, str], Any], param_set: Any, compute: Any
) -> Any:
    """``compute(param_set)``, kept in ``memo`` by (object id, hash, name, hash mode) once the
    set's hash is computed; computed afresh before that."""
    known = getattr(param_set, "hash", None)
    if not isinstance(known, str):
        return compute(param_set)
    key = (id(param_set), known, str(getattr(param_set, "name", "")), active_hash_mode())
    cached = memo.get(key)
    if cached is None:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        cached = memo[key] = compute(param_set)
    return cached


def _string_hash_representations(param_set: Any) -> dict[str, Any]:
    hash_reps = _recorded_hash_values(param_set)
    shown: dict[str, Any] = {}
    skipped: dict[str, Any] = {}
    for key, (strategy, representation) in hash_reps.items():
        value = getattr(param_set, key)
        if key == "name":
            shown[key] = param_set.name
        elif strategy.startswith("get_param_set_hash_values"):
            shown[key] = param_set_string_hash_representations(value)
        elif representation is not None:
            shown[key] = str(representation)
        elif key in PARAMETERS_BLACKLIST:
            continue
        elif is_dataclass(value) and not isinstance(value, type):
            skipped[key] = param_set_string_hash_representations(value)
        else:
            try:
                skipped[key] = str(value)
            except Exception:  # a broken __str__ must not break reporting
                skipped[key] = None
    if skipped:
        shown["IGNORED_PARAMS"] = skipped
    return shown


# --------------------------------------------------------------------------- hashing


def hash_param_set(
    param_set: Any,
    store_in_registry: bool = False,
    registry_path: str | None = None,
    dry: bool = False,
) -> Any:
    """Return the hash of a parameter set (or, with ``dry=True``, the per-field explanation).

    A hash already stored on ``param_set.hash`` is returned unchanged. Registration in the run
    registry is done by the manager in one transaction per run; ``store_in_registry`` and
    ``registry_path`` are accepted for compatibility with curifactory and write the same
    information to the SQLite registry under ``registry_path``.
    """
    hash_reps = get_param_set_hash_values(param_set)
    if dry:
        return hash_reps
    if param_set.hash is not None:
        hash_str = param_set.hash
    elif active_hash_mode() == "legacy":
        hash_str = compute_hash(hash_reps)
    else:
        hash_str = _v1_hash(param_set, hash_reps)
    if store_in_registry and registry_path is not None:
        from .store import RunStore

        with RunStore(registry_path) as store:
            store.register_param_sets([registry_entry(param_set, hash_str, hash_reps)])
    return hash_str


def registry_entry(
    param_set: Any, hash_str: str, hash_reps: dict[str, tuple[str, Any]] | None = None
) -> dict[str, Any]:
    """The row the run registry keeps for one parameter set."""
    if hash_reps is None:
        hash_reps = _recorded_hash_values(param_set)
    return {
        "hash": hash_str,
        "name": param_set.name,
        "representation": param_set_string_hash_representations(param_set),
        "explanation": {key: [s, _jsonable(v)] for key, (s, v) in hash_reps.items()},
        "hash_mode": active_hash_mode(),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: [s, _jsonable(v)] if isinstance(s, str) else v for k, (s, v) in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def compute_hash(hash_representations: dict[str, tuple[str, Any]]) -> str:
    """curifactory's order-independent hash: the hex sum of md5(field + representation)."""
    return f"{_legacy_hash_total(hash_representations):x}"


def _legacy_hash_total(hash_representations: dict[str, tuple[str, Any]]) -> int:
    total = 0
    for key, (strategy, representation) in hash_representations.items():
        if representation is None:
            continue
        if strategy.startswith("get_param_set_hash_values"):
            total += _legacy_hash_total(representation)
        else:
            total += int(hashlib.md5(f"{key}{representation}".encode()).hexdigest(), 16)
    return total


def _v1_hash(param_set: Any, hash_reps: dict[str, tuple[str, Any]]) -> str:
    return _digest(["params", _encode_fields(param_set, hash_reps)])


def _encode_fields(param_set: Any, hash_reps: dict[str, tuple[str, Any]]) -> list[Any]:
    """Encode the hashed fields of a (possibly nested) dataclass, sorted by field name."""
    encoded = []
    for key in sorted(hash_reps):
        strategy, representation = hash_reps[key]
        if representation is None:
            continue
        if strategy.startswith("get_param_set_hash_values"):
            value = getattr(param_set, key)
            encoded.append([key, ["dataclass", _encode_fields(value, representation)]])
        elif strategy.startswith("param_set.hash_representations"):
            encoded.append([key, ["custom", encode_value(representation, key)]])
        else:
            encoded.append([key, encode_value(getattr(param_set, key), key)])
    return encoded


def add_params_combo_hash(
    active_record: Any,
    records_list: list[Any],
    registry_path: str | None = None,
    store_in_registry: bool = False,
) -> str:
    """The hash of an aggregate record: its own parameter hash with its input records' hashes."""
    members = sorted(
        record.params.hash if record.params is not None else "None" for record in records_list
    )
    active = active_record.params.hash if active_record.params is not None else "None"
    if active_hash_mode() == "legacy":
        combo = hashlib.md5(str([active, *members]).encode()).hexdigest()
    else:
        combo = _digest(["aggregate", active, members])
    if store_in_registry and registry_path is not None:
        from .store import RunStore

        with RunStore(registry_path) as store:
            store.register_combo_hash(combo, active, members)
    return combo


def _digest(encoded: Any) -> str:
    text = json.dumps(encoded, separators=(",", ":"), sort_keys=False, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_WIDTH]


# --------------------------------------------------------------------------- canonical encoding

_PLAIN_TYPES = (bool, int, float, str, type(None))


def encode_value(value: Any, field_name: str = "?") -> Any:
    """Encode a value as tagged JSON-ready data; equal values encode equally, others differ."""
    return _encode(value, field_name, set())


def _encode(value: Any, where: str, seen: set[int]) -> Any:  # noqa: C901 - one branch per type
    if value is None:
        return ["none"]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, enum.Enum):
        return ["enum", type(value).__module__, type(value).__qualname__, value.name]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", repr(value) if math.isfinite(value) else str(value)]
    if isinstance(value, complex):
        return ["complex", repr(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, (bytes, bytearray)):
        return ["bytes", hashlib.sha256(bytes(value)).hexdigest()]
    if isinstance(value, (pathlib.PurePath, os.DirEntry)):
        return ["path", os.fspath(value)]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return [type(value).__name__, value.isoformat()]
    if isinstance(value, datetime.timedelta):
        return ["timedelta", value.total_seconds()]
    special = _encode_numeric_library(value, where, seen)
    if special is not None:
        return special
    if id(value) in seen:
        raise UnhashableParameterError(
            f"parameter '{where}' contains a reference cycle; give it a hash function with "
            f"set_hash_functions({where.split('.')[0]}=...) or remove the cycle"
        )
    seen = seen | {id(value)}
    if is_dataclass(value) and not isinstance(value, type):
        # the same rules as a dataclass held directly by a field: no class name, None and
        # blacklisted fields skipped, hash_representations honoured
        return ["dataclass", _encode_fields(value, get_param_set_hash_values(value))]
    if isinstance(value, (list, tuple)):
        tag = "tuple" if isinstance(value, tuple) else "list"
        return [tag, [_encode(item, f"{where}[{i}]", seen) for i, item in enumerate(value)]]
    if isinstance(value, Mapping):
        items = [[_encode(k, where, seen), _encode(v, f"{where}[{k!r}]", seen)]
                 for k, v in value.items()]
        items.sort(key=lambda pair: json.dumps(pair[0], sort_keys=True))
        return ["dict", items]
    if isinstance(value, (set, frozenset)):
        members = [_encode(item, where, seen) for item in value]
        members.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return ["set", members]
    if isinstance(value, functools.partial):
        return ["partial", _encode(value.func, where, seen),
                _encode(list(value.args), where, seen), _encode(dict(value.keywords), where, seen)]
    if isinstance(value, type):
        return ["type", value.__module__, value.__qualname__]
    if callable(value) and hasattr(value, "__qualname__"):
        return _encode_callable(value, where, seen)
    return _encode_by_repr(value, where)


def _encode_numeric_library(value: Any, where: str, seen: set[int]) -> Any:
    """numpy and pandas values by content; ``None`` when the value is neither."""
    module = type(value).__module__.split(".")[0]
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                return ["ndarray-object", list(value.shape),
                        _encode(value.tolist(), where, seen)]
            data = np.ascontiguousarray(value)
            return ["ndarray", data.dtype.str, list(data.shape),
                    hashlib.sha256(data.tobytes()).hexdigest()]
        if isinstance(value, np.generic):
            return _encode(value.item(), where, seen)
    if module == "pandas":
        import pandas as pd

        if isinstance(value, (pd.DataFrame, pd.Series, pd.Index)):
            row_hashes = pd.util.hash_pandas_object(value, index=not isinstance(value, pd.Index))
            if isinstance(value, pd.DataFrame):
                dtypes = [str(d) for d in value.dtypes]
                columns = [str(c) for c in value.columns]
            else:
                dtypes, columns = [str(value.dtype)], []
            return ["pandas", type(value).__name__, dtypes, columns, list(value.shape),
                    hashlib.sha256(row_hashes.to_numpy().tobytes()).hexdigest()]
    return None


def _encode_callable(value: Any, where: str, seen: set[int]) -> Any:
    module = getattr(value, "__module__", None) or "?"
    qualname = value.__qualname__
    code = getattr(value, "__code__", None)
    if code is not None and ("<lambda>" in qualname or "<locals>" in qualname):
        # Anonymous and nested functions share names; their code tells them apart.
        closure = []
        for cell in getattr(value, "__closure__", None) or ():
            try:
                closure.append(_encode(cell.cell_contents, where, seen))
            except (ValueError, UnhashableParameterError):
                closure.append(["unencodable-closure"])
        return ["lambda", module, qualname, _code_fingerprint(code), closure]
    return ["callable", module, qualname]


def _code_fingerprint(code: Any) -> str:
    """A digest of a code object that is stable across processes (nested code included)."""
    consts = [
        _code_fingerprint(const) if hasattr(const, "co_code") else repr(const)
        for const in code.co_consts
    ]
    text = repr((consts, code.co_names, code.co_varnames)).encode()
    return hashlib.sha256(code.co_code + text).hexdigest()


def _encode_by_repr(value: Any, where: str) -> Any:
    cls = type(value)
    if cls.__repr__ is object.__repr__:
        root = where.split(".")[0].split("[")[0]
        raise UnhashableParameterError(
            f"parameter '{where}' holds a {cls.__module__}.{cls.__qualname__} whose repr is only "
            "its memory address, so its hash would change on every run; give the class a "
            f"__repr__ that describes its content, or set hash_representations with "
            f"set_hash_functions({root}=lambda params, value: ...) (or None to ignore it)"
        )
    return ["repr", cls.__module__, cls.__qualname__, repr(value)]


def _describe_callable(value: Any) -> str:
    if isinstance(value, functools.partial):
        return f"partial({_describe_callable(value.func)}, args={value.args!r}, kw={value.keywords!r})"
    module = getattr(value, "__module__", "?")
    return f"{module}.{getattr(value, '__qualname__', type(value).__qualname__)}"


def explain(param_set: Any) -> dict[str, tuple[str, Any]]:
    """The per-field ``(strategy, representation)`` explanation (same as ``params_hash(dry=True)``)."""
    return get_param_set_hash_values(param_set)

