"""``cf.sweep``: expand one parameter set over a grid and zipped groups of values.

::

    def get_params():
        base = Params(name="mlp", lr=0.01, depth=2)
        return cf.sweep(base, grid={"depth": [2, 3]},
                        zipped=[{"lr": [0.1, 0.01], "epochs": [10, 50]}])

gives four parameter sets (two depths times two ``(lr, epochs)`` pairs), named
``mlp_depth=2_lr=0.1_epochs=10``, ``mlp_depth=2_lr=0.01_epochs=50``, ... The fields of one
zipped group vary together (fluidml's ``config_group_prefix`` semantics); the grid fields and
the groups form a Cartesian product. Each set is a ``dataclasses.replace`` of a deep copy of
``base``, so ``__post_init__`` runs and no mutable value is shared between sets; a ``hash``
pinned on ``base`` is dropped (every set gets its own).

Names: ``<prefix>_<field>=<value>_...`` with the varied fields in the order they were given
(grid fields first, then each group's fields). ``prefix`` is ``base.name`` unless ``name=`` is
given (``name=""``: no prefix; a base still called ``UNNAMED`` also gives no prefix). Values are
rendered readably: numbers as Python prints them (``0.1``, ``1e-05``, ``3``), ``None``/``True``,
strings as they are, functions and classes by name, dataclasses by class name and other objects
by ``repr``; every character outside ``A-Z a-z 0-9 . + - =`` becomes ``-``, and a rendering
longer than 40 characters is cut to 32 plus ``~`` and 6 hex digits of its SHA-256. Two sets
whose names still coincide (``"a b"`` and ``"a-b"``) both get ``~`` and 6 hex digits of their
exact values appended, so names are unique and do not depend on the order of the lists.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from .errors import SweepError

__all__ = ["sweep", "sweep_name", "render_value"]

T = TypeVar("T")

RESERVED_FIELDS = frozenset({"name", "hash", "hash_representations"})
"""Fields a sweep may not vary: they name and hash the sets it makes."""

MAX_VALUE_LENGTH = 40
_UNSAFE = re.compile(r"[^A-Za-z0-9.+\-=]")


def sweep(
    base: T,
    grid: Mapping[str, Sequence[Any]] | None = None,
    zipped: Sequence[Mapping[str, Sequence[Any]]] | Mapping[str, Sequence[Any]] | None = None,
    name: str | None = None,
) -> list[T]:
    """Expand ``base`` over ``grid`` (a product) and ``zipped`` groups (varied together).

    Args:
        base: a dataclass instance, usually of an ``ExperimentParameters`` subclass.
        grid: field name -> list (tuple, range, 1-D numpy array) of values; every
            combination is made. A dotted name (``"model.lr"``) sets a field of a nested
            dataclass.
        zipped: a list of groups (or one group); each maps field names to equal-length lists
            whose ``i``-th values go together.
        name: the prefix of the generated names (default ``base.name``; ``""`` for none).

    Returns:
        A new list of parameter sets, in product order (the last axis varies fastest).

    Raises:
        SweepError: an unknown or reserved field, a value that is not a non-empty list, a
            group whose lists differ in length, or a field given more than once.
    """
    if not dataclasses.is_dataclass(base) or isinstance(base, type):
        raise SweepError(
            f"cf.sweep() needs a parameter set instance as base, got {_describe(base)}; "
            "write cf.sweep(Params(name=...), grid={...})"
        )
    groups = _groups(zipped)
    axes: list[tuple[list[str], list[tuple[Any, ...]]]] = []
    seen: dict[str, str] = {}
    for field_name, values in (grid or {}).items():
        checked = _values(field_name, values, "grid")
        _claim(base, field_name, "grid", seen)
        axes.append(([field_name], [(value,) for value in checked]))
    for number, group in enumerate(groups):
        where = f"zipped[{number}]"
        if not group:
            raise SweepError(f"cf.sweep(): {where} is empty; give it fields, or leave it out")
        columns = {field: _values(field, values, where) for field, values in group.items()}
        lengths = {field: len(values) for field, values in columns.items()}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{field!r} has {n}" for field, n in lengths.items())
            raise SweepError(
                f"cf.sweep(): the lists of {where} differ in length ({listed}); the fields of a "
                "zipped group vary together, so give each the same number of values (or move a "
                "field to grid= to combine it with every value)"
            )
        for field_name in columns:
            _claim(base, field_name, where, seen)
        axes.append((list(columns), list(zip(*columns.values(), strict=True))))
    prefix = _prefix(base, name)
    fields = [field for names, _ in axes for field in names]
    sets: list[T] = []
    names: list[str] = []
    for combination in itertools.product(*(rows for _, rows in axes)):
        values = [value for row in combination for value in row]
        changes = dict(zip(fields, values, strict=True))
        names.append(sweep_name(prefix, changes))
        sets.append(_replace(base, changes))
    for param_set, unique in zip(sets, _unique(names, sets, fields), strict=True):
        _set(param_set, "name", unique)
    return sets


def sweep_name(prefix: str, changes: Mapping[str, Any]) -> str:
    """``<prefix>_<field>=<value>_...`` for the varied fields (see the module docstring)."""
    parts = [f"{_safe(field)}={render_value(value)}" for field, value in changes.items()]
    return "_".join([prefix, *parts] if prefix else parts) or "sweep"


def render_value(value: Any) -> str:
    """A short, readable, file-name-safe rendering of one swept value."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()  # a numpy scalar renders as the number it holds
    if isinstance(value, bool) or value is None:
        text = str(value)
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, str):
        text = value or "''"
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        text = type(value).__name__
    elif isinstance(value, type) or callable(value):
        text = getattr(value, "__name__", None) or type(value).__name__
    elif isinstance(value, (list, tuple)):
        text = "+".join(render_value(item) for item in value) or "empty"
    else:
        text = repr(value)
    text = _safe(text)
    if len(text) > MAX_VALUE_LENGTH:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:6]
        text = f"{text[:32]}~{digest}"
    return text


def _safe(text: str) -> str:
    return _UNSAFE.sub("-", text)


def _describe(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__} (not an instance)"
    return f"a value of type {type(value).__name__}"


def _groups(
    zipped: Sequence[Mapping[str, Sequence[Any]]] | Mapping[str, Sequence[Any]] | None,
) -> list[Mapping[str, Sequence[Any]]]:
    if zipped is None:
        return []
    if isinstance(zipped, Mapping):
        return [zipped]
    groups = list(zipped)
    for number, group in enumerate(groups):
        if not isinstance(group, Mapping):
            raise SweepError(
                f"cf.sweep(): zipped[{number}] is {_describe(group)}; each zipped group is a "
                "dict of field -> list, e.g. zipped=[{'lr': [0.1, 0.01], 'epochs': [10, 50]}]"
            )
    return groups


def _values(field_name: str, values: Any, where: str) -> list[Any]:
    listlike = isinstance(values, (Sequence, range)) or (
        type(values).__module__ == "numpy" and getattr(values, "ndim", 0) == 1
    )
    if isinstance(values, (str, bytes)) or not listlike:
        raise SweepError(
            f"cf.sweep(): {where}[{field_name!r}] is {_describe(values)}, not a list of values; "
            f"write {field_name!r}: [{values!r}] for a single value"
        )
    if type(values).__module__ == "numpy":
        values = values.tolist()  # Python numbers: the same hashes as a hand-written list
    if len(values) == 0:
        raise SweepError(
            f"cf.sweep(): {where}[{field_name!r}] is an empty list, which would produce no "
            "parameter sets; give it at least one value or remove the field"
        )
    return list(values)


def _claim(base: Any, field_name: str, where: str, seen: dict[str, str]) -> None:
    """Check that ``field_name`` names a sweepable field not already varied elsewhere."""
    _resolve(base, field_name)
    if field_name.split(".")[0] in RESERVED_FIELDS:
        raise SweepError(
            f"cf.sweep(): {where} varies {field_name!r}, which names and hashes the parameter "
            "sets; sweep() generates names itself (use name= for the prefix)"
        )
    overlapping = [
        other
        for other in seen
        if other == field_name
        or other.startswith(field_name + ".")
        or field_name.startswith(other + ".")
    ]
    if overlapping:
        other = overlapping[0]
        raise SweepError(
            f"cf.sweep(): field {field_name!r} is in both {seen[other]} and {where}"
            + (f" (as {other!r})" if other != field_name else "")
            + "; a field can vary in one place only: keep it in grid= to combine it with every "
            "other value, or in one zipped group to vary it together with that group"
        )
    seen[field_name] = where


def _resolve(base: Any, dotted: str) -> None:
    """Raise SweepError unless ``dotted`` names a field (through nested dataclasses)."""
    target = base
    path: list[str] = []
    for part in dotted.split("."):
        fields = [f.name for f in dataclasses.fields(target)]
        if part not in fields:
            owner = type(target).__name__
            where = f" of {'.'.join(path)}" if path else ""
            close = difflib.get_close_matches(part, fields, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SweepError(
                f"cf.sweep(): {dotted!r} is not a field{where} ({owner} has fields "
                f"{', '.join(fields)}); {hint}sweep only fields of the dataclass"
            )
        path.append(part)
        target = getattr(target, part)
        if part != dotted.split(".")[-1] and (
            not dataclasses.is_dataclass(target) or isinstance(target, type)
        ):
            raise SweepError(
                f"cf.sweep(): {dotted!r} goes through {'.'.join(path)}, which holds "
                f"{_describe(target)}, not a dataclass; only nested dataclass fields can be "
                "swept with a dotted name"
            )


def _replace(base: T, changes: Mapping[str, Any]) -> T:
    try:
        copied = copy.deepcopy(base)
    except Exception:  # an uncopyable value (a lock, a connection): share it, as replace() does
        copied = base
    unpinned = {"hash": None} if hasattr(copied, "hash") else {}
    return _replace_nested(copied, {**unpinned, **changes})


def _replace_nested(target: Any, changes: Mapping[str, Any]) -> Any:
    """``dataclasses.replace`` where a dotted name (``"model.lr"``) reaches a nested dataclass."""
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for field_name, value in changes.items():
        head, _, rest = field_name.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[field_name] = value
    for head, inner in nested.items():
        direct[head] = _replace_nested(getattr(target, head), inner)
    return dataclasses.replace(target, **direct)


def _set(param_set: Any, field_name: str, value: Any) -> None:
    object.__setattr__(param_set, field_name, value)  # also works for frozen dataclasses


def _prefix(base: Any, name: str | None) -> str:
    if name is not None:
        return _safe(name)
    base_name = getattr(base, "name", "")
    return "" if base_name in (None, "", "UNNAMED") else _safe(str(base_name))


def _unique(names: list[str], sets: list[Any], fields: list[str]) -> list[str]:
    """Append a digest of the exact values to every name that is not unique."""
    counts: dict[str, int] = {}
    for generated in names:
        counts[generated] = counts.get(generated, 0) + 1
    unique = []
    plain: dict[str, str] = {}
    for generated, param_set in zip(names, sets, strict=True):
        if counts[generated] > 1:
            exact = repr([(field, type(_get(param_set, field)).__qualname__,
                           repr(_get(param_set, field))) for field in fields])
            digest = hashlib.sha256(exact.encode("utf-8")).hexdigest()[:6]
            plain[f"{generated}~{digest}"] = generated
            generated = f"{generated}~{digest}"
        unique.append(generated)
    if len(set(unique)) != len(unique):
        duplicate = next(n for n in unique if unique.count(n) > 1)
        raise SweepError(
            f"cf.sweep(): two parameter sets would both be named {plain.get(duplicate, duplicate)!r}"
            " because a list holds the same value twice; remove the repeated value"
        )
    return unique


def _get(param_set: Any, dotted: str) -> Any:
    value = param_set
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
