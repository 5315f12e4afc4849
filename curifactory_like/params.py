"""Parameter sets: the ``ExperimentParameters`` base, and loading and selecting them from files.

A parameter file is a module ``<params_module_name>.<name>`` (or, failing that,
``<experiments_module_name>.<name>``) with a ``get_params()`` returning a non-empty list of
dataclass instances derived from ``ExperimentParameters``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, is_dataclass
from typing import Any

from . import hashing
from .errors import ParameterFileError, ParameterSelectionError, UnhashableParameterError


@dataclass
class ExperimentParameters:
    """Base class of a parameter set: subclass it as a ``@dataclass`` with your own fields."""

    name: str = "UNNAMED"
    """Parameter set name; unique within a run, shown in logs and reports."""
    hash: str | None = None
    """Filled in by curifactory_like; set it by hand only to pin a cache name."""
    overwrite: bool = False
    """Recompute every stage for this set (``--overwrite`` sets it)."""
    hash_representations: dict[str, Callable[..., Any] | None] = field(
        default_factory=dict, repr=False
    )
    """Per-field hash functions ``(params, value) -> representation``, or ``None`` to ignore."""

    def params_hash(self, dry: bool = False) -> Any:
        """The hash of this set, or with ``dry=True`` the per-field ``(strategy, value)``."""
        return hashing.hash_param_set(self, store_in_registry=False, dry=dry)


@dataclass
class ParamSetSource:
    """Where a parameter set came from: its file and its index within that file."""

    param_file: str
    index: int


def parse_index_ranges(entries: Sequence[str] | None, option: str) -> list[int]:
    """Expand ``["3", "5-8"]`` into ``[3, 5, 6, 7]`` (ranges are end-exclusive)."""
    indices: list[int] = []
    for entry in entries or []:
        text = str(entry).strip()
        try:
            if "-" in text:
                start_text, end_text = text.split("-", 1)
                start, end = int(start_text), int(end_text)
                if end <= start:
                    raise ValueError
                indices.extend(range(start, end))
            else:
                value = int(text)
                if value < 0:
                    raise ValueError
                indices.append(value)
        except ValueError:
            raise ParameterSelectionError(
                f"{option} value '{entry}' is not an index 'I' or an end-exclusive range 'A-B' "
                f"with A < B (e.g. {option} 0-3 for the first three parameter sets)"
            ) from None
    return indices


def import_param_module(param_file: str, config: dict[str, Any]) -> Any:
    """Import a parameter file by name from the params module, else the experiments module."""
    candidates = [
        f"{config['params_module_name']}.{param_file}",
        f"{config['experiments_module_name']}.{param_file}",
    ]
    for module_name in candidates:
        try:
            spec = importlib.util.find_spec(module_name)
        except (ModuleNotFoundError, ValueError):
            spec = None
        if spec is None:
            continue
        try:
            return importlib.import_module(module_name)
        except Exception as exc:
            location = spec.origin or module_name
            raise ParameterFileError(
                f"parameter file '{param_file}' ({location}) failed to import: "
                f"{type(exc).__name__}: {exc}\n{_short_traceback(exc)}"
                "fix the error in that file and run again"
            ) from exc
    raise ParameterFileError(
        f"parameter file '{param_file}' not found: looked for modules {' and '.join(candidates)}; "
        "check the name (experiment ls lists parameter files), that the folder has an "
        "__init__.py, and that curifactory_config.json names the right modules"
    )


def _short_traceback(exc: BaseException) -> str:
    """``  at FILE:LINE`` of the user's code where ``exc`` arose (never a frame of this package)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"  at {exc.filename}:{exc.lineno}\n"
    package_dir = os.path.dirname(os.path.abspath(__file__))
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "importlib" not in f.filename and not os.path.abspath(f.filename).startswith(package_dir)
    ]
    if not frames:
        return ""
    return f"  at {frames[-1].filename}:{frames[-1].lineno}\n"


def get_param_sets_from_module(module: Any, param_file: str) -> list[Any]:
    """Call ``get_params()`` of a parameter module and validate what it returns."""
    origin = getattr(module, "__file__", param_file)
    get_params = getattr(module, "get_params", None)
    if not callable(get_params):
        raise ParameterFileError(
            f"parameter file '{param_file}' ({origin}) has no get_params() function; "
            "define `def get_params(): return [Params(name=...), ...]`"
        )
    try:
        param_sets = get_params()
    except Exception as exc:
        raise ParameterFileError(
            f"get_params() in parameter file '{param_file}' ({origin}) raised "
            f"{type(exc).__name__}: {exc}\n{_short_traceback(exc)}fix it and run again"
        ) from exc
    if not isinstance(param_sets, list):
        raise ParameterFileError(
            f"Parameter file '{param_file}' did not return a list, please make sure any "
            "`get_params()` functions are returning non-empty arrays.",
            hint=f"get_params() in {origin} returned a {type(param_sets).__name__}; return a "
            "list of parameter sets",
        )
    if not param_sets:
        raise ParameterFileError(
            "No parameter sets found, please make sure any `get_params()` functions are "
            "returning non-empty arrays.",
            hint=f"get_params() in parameter file '{param_file}' ({origin}) returned an empty "
            "list; return at least one parameter set",
        )
    for index, param_set in enumerate(param_sets):
        if not (is_dataclass(param_set) and not isinstance(param_set, type)) or not all(
            hasattr(param_set, field_name) for field_name in ("name", "hash", "overwrite")
        ):
            raise ParameterFileError(
                f"get_params() in parameter file '{param_file}' ({origin}) returned "
                f"{type(param_set).__name__} at index {index}; every item must be a dataclass "
                "instance derived from curifactory_like.ExperimentParameters"
            )
    return param_sets


def hash_param_sets(param_sets: Sequence[Any], param_file: str) -> None:
    """Compute and store the hash of each set, naming the set when a value cannot be hashed."""
    for param_set in param_sets:
        try:
            param_set.hash = hashing.hash_param_set(param_set)
        except UnhashableParameterError as exc:
            raise UnhashableParameterError(
                f"parameter set '{param_set.name}' from parameter file '{param_file}': {exc}"
            ) from exc
        except TypeError as exc:
            raise UnhashableParameterError(
                f"parameter set '{param_set.name}' from parameter file '{param_file}' could not "
                f"be hashed ({exc}); check its hash_representations functions"
            ) from exc


def select_param_sets(
    param_sets: list[Any],
    sources: list[ParamSetSource],
    names: Sequence[str] | None,
    indices: Sequence[int],
    global_indices: Sequence[int],
) -> tuple[list[Any], list[ParamSetSource]]:
    """Apply ``--names``, ``--indices`` (per file) and ``--global-indices`` (over all files)."""
    if names:
        known = {p.name for p in param_sets}
        unknown = [n for n in names if n not in known]
        if unknown:
            files = sorted({s.param_file for s in sources})
            raise ParameterSelectionError(
                f"Paramset name '{unknown[0]}' not found in any of the provided parameter files.",
                hint=f"--names {', '.join(repr(n) for n in unknown)} matches no parameter set in "
                f"parameter file(s) {', '.join(files)}; known names: "
                f"{', '.join(sorted(known)[:20])}{' ...' if len(known) > 20 else ''}",
            )
    chosen = [
        i
        for i, (param_set, source) in enumerate(zip(param_sets, sources, strict=True))
        if (not names or param_set.name in names) and (not indices or source.index in indices)
    ]
    if indices and not chosen:
        raise ParameterSelectionError(
            f"--indices {', '.join(map(str, indices))} selects no parameter set; each file has "
            "indices 0 to len(get_params())-1"
        )
    if global_indices:
        bad = [g for g in global_indices if g >= len(chosen)]
        if bad:
            raise ParameterSelectionError(
                f"--global-indices {bad[0]} is out of range: only {len(chosen)} parameter sets "
                f"are selected (valid: 0 to {len(chosen) - 1})"
            )
        chosen = [chosen[g] for g in global_indices]
    return [param_sets[i] for i in chosen], [sources[i] for i in chosen]


def collect_parameter_sets(
    param_files: Sequence[str],
    config: dict[str, Any],
    names: Sequence[str] | None = None,
    indices: Sequence[int] = (),
    global_indices: Sequence[int] = (),
    overwrite: bool = False,
) -> tuple[list[Any], dict[str, list[tuple[str, str]]]]:
    """Load, hash and select the parameter sets of the given files.

    Returns the selected sets and, per file, the ``(name, hash)`` pairs that were selected
    (curifactory's ``param_file_param_sets``).
    """
    all_sets: list[Any] = []
    sources: list[ParamSetSource] = []
    for param_file in param_files:
        module = import_param_module(param_file, config)
        file_sets = get_param_sets_from_module(module, param_file)
        for index, param_set in enumerate(file_sets):
            if overwrite:
                param_set.overwrite = True
            all_sets.append(param_set)
            sources.append(ParamSetSource(param_file, index))
    selected, selected_sources = select_param_sets(
        all_sets, sources, names, indices, global_indices
    )
    by_file: dict[str, list[tuple[str, str]]] = {name: [] for name in param_files}
    for param_file in param_files:
        hash_param_sets(
            [p for p, s in zip(selected, selected_sources, strict=True) if s.param_file == param_file],
            param_file,
        )
    _refuse_ambiguous_names(selected, selected_sources)
    for param_set, source in zip(selected, selected_sources, strict=True):
        by_file[source.param_file].append((param_set.name, param_set.hash))
    return selected, by_file


def _refuse_ambiguous_names(param_sets: Sequence[Any], sources: Sequence[ParamSetSource]) -> None:
    """Two selected parameter sets with one name but different values would be confused."""
    seen: dict[str, tuple[str, ParamSetSource]] = {}
    for param_set, source in zip(param_sets, sources, strict=True):
        earlier = seen.setdefault(param_set.name, (param_set.hash, source))
        if earlier[0] != param_set.hash:
            first = earlier[1]
            raise ParameterFileError(
                f"two different parameter sets are named '{param_set.name}': index "
                f"{first.index} of parameter file '{first.param_file}' and index {source.index} "
                f"of parameter file '{source.param_file}'; give each parameter set a unique name "
                "(records, reports and --names tell sets apart by name)"
            )
