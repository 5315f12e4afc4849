"""``experiment check``: find what would stop a run before anything runs, and summarise the run.

:func:`check_experiment` imports the experiment and its parameter files, validates the
parameter sets, checks every stage declaration and cacher, maps the DAG exactly as a run's map
pass does (nothing is computed or written) and plans it. Each problem is a :class:`Problem`
with a kind, a message saying what and how to fix it, and where possible ``file:line``.

Bad input to the command itself (an experiment or parameter file that does not exist, an
unknown ``--names`` or ``--overwrite-stage``) raises a ``CurifactoryError`` instead, as the
other commands do. "The same run happened before" means: a registered run of the same
experiment whose parameter-set hashes are exactly the hashes selected now (names, order,
parameter files and options aside).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from . import hashing, utils
from .errors import (
    CurifactoryError,
    ParameterFileError,
    UnhashableParameterError,
)
from .params import (
    ParamSetSource,
    get_param_sets_from_module,
    import_param_module,
    parse_index_ranges,
    select_param_sets,
)

__all__ = ["CheckReport", "CheckSummary", "Problem", "ProblemKind", "check_experiment"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class ProblemKind(str, enum.Enum):
    """The classes of problem ``experiment check`` finds."""

    EXPERIMENT = "experiment"  # the experiment module fails to import or has no run()
    PARAMETER_FILE = "parameter-file"  # fails to import; get_params() raises or returns junk
    DUPLICATE_NAME = "duplicate-name"  # two selected parameter sets share a name
    UNHASHABLE = "unhashable"  # a parameter value has no stable hash
    SAME_HASH = "same-hash"  # (warning) two differently named sets share every artifact
    STAGE_DECLARATION = "stage-declaration"  # inputs/outputs/cachers disagree with the function
    CACHER = "cacher"  # a stage's cacher cannot be built or cannot name its file
    MISSING_INPUT = "missing-input"  # a stage input that no earlier stage outputs
    MAP = "map"  # run() raised while the experiment was mapped


@dataclasses.dataclass
class Problem:
    """One problem (or warning): what it is, where, and how to fix it."""

    kind: ProblemKind
    message: str
    location: str | None = None
    """``file:line`` (relative to the project folder when inside it), if known."""

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"[{self.kind.value}] {where}{self.message}"


@dataclasses.dataclass
class CheckSummary:
    """What a run with these options would do."""

    param_sets: int
    param_sets_by_file: dict[str, int]
    records: int = 0
    aggregates: int = 0
    stages: list[str] = dataclasses.field(default_factory=list)
    stage_calls: int = 0
    artifacts: int = 0
    """Outputs with a cacher."""
    cached: int = 0
    """Of those, usable from the cache now."""
    to_compute: int = 0
    """Outputs (cached or not) of stage calls the plan computes."""
    actions: dict[str, int] = dataclasses.field(default_factory=dict)
    """Stage calls per planned action (compute, overwrite, load, skip)."""
    planned: bool = False
    """False when problems stopped the map pass before a plan was made."""
    same_run: str | None = None
    """The newest earlier run of the same experiment with exactly these parameter sets."""
    same_run_status: str | None = None
    same_runs: int = 0
    registry: bool = False
    """Whether a run registry exists to compare with."""


@dataclasses.dataclass
class CheckReport:
    """Problems, warnings and the summary of one ``experiment check``."""

    experiment: str
    param_files: list[str]
    problems: list[Problem] = dataclasses.field(default_factory=list)
    warnings: list[Problem] = dataclasses.field(default_factory=list)
    summary: CheckSummary | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``experiment check --json``)."""
        return {
            "experiment": self.experiment,
            "param_files": self.param_files,
            "ok": self.ok,
            "problems": [_problem_dict(p) for p in self.problems],
            "warnings": [_problem_dict(p) for p in self.warnings],
            "summary": dataclasses.asdict(self.summary) if self.summary else None,
        }


def _problem_dict(problem: Problem) -> dict[str, Any]:
    return {"kind": problem.kind.value, "message": problem.message, "location": problem.location}


def check_experiment(
    experiment_name: str,
    param_files: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    indices: Sequence[str] | None = None,
    global_indices: Sequence[str] | None = None,
    overwrite: bool = False,
    overwrite_stages: Sequence[str] | None = None,
    cache_dir: str | None = None,
    prefix: str | None = None,
    lazy: bool = False,
    ignore_lazy: bool = False,
) -> CheckReport:
    """Check an experiment as ``experiment check`` does; see the module docstring.

    Raises:
        CurifactoryError: bad input (no such experiment or parameter file, a selection or
            ``--overwrite-stage`` that matches nothing).
    """
    from .experiment import find_experiment
    from .manager import ArtifactManager

    config = utils.get_configuration()
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    find_experiment(experiment_name, config)
    files = list(param_files or [experiment_name])
    report = CheckReport(experiment_name, files)
    manager = ArtifactManager(
        experiment_name, dry=True, prefix=prefix, lazy=lazy, ignore_lazy=ignore_lazy,
        status_override=None,
    )
    manager.parameter_files = files
    manager.overwrite_stages = list(overwrite_stages or [])
    if cache_dir is not None:
        manager.cache_path = cache_dir
    param_sets, sources = _load_param_sets(report, files, config)
    try:
        param_sets, sources = select_param_sets(
            param_sets,
            sources,
            names,
            parse_index_ranges(indices, "--indices"),
            parse_index_ranges(global_indices, "--global-indices"),
        )
    except CurifactoryError:
        if not report.problems:  # a selection naming sets of a broken file is not the issue
            raise
    for param_set in param_sets:
        if overwrite:
            param_set.overwrite = True
    locations = {id(p): _get_params_location(s.param_file, config) for p, s in
                 zip(param_sets, sources, strict=True)}
    _check_param_sets(report, param_sets, sources, locations)
    summary = CheckSummary(
        param_sets=len(param_sets),
        param_sets_by_file={f: sum(1 for s in sources if s.param_file == f) for f in files},
    )
    report.summary = summary
    _compare_with_registry(summary, experiment_name, param_sets, manager)
    module = _import_experiment(report, experiment_name, config)
    if module is None or not param_sets:
        return report
    from .check_map import check_stages, map_and_plan

    check_stages(report, module)
    map_and_plan(report, module, param_sets, manager, summary)
    return report


# ---------------------------------------------------------------------- locations


def package_dir() -> str:
    """The folder of the curifactory_like package (its frames are not the user's code)."""
    return _PACKAGE_DIR


def _relative(path: str) -> str:
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    return os.path.relpath(absolute, cwd) if absolute.startswith(cwd + os.sep) else absolute


def user_location(exc: BaseException) -> str | None:
    """``file:line`` of the innermost frame of the user's code in ``exc``'s traceback."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_relative(exc.filename)}:{exc.lineno}"
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if "importlib" not in frame.filename
        and not frame.filename.startswith("<")
        and not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR)
    ]
    cause = exc.__cause__ or exc.__context__
    if not frames and cause is not None and cause is not exc:
        return user_location(cause)
    if not frames:
        return None
    return f"{_relative(frames[-1].filename)}:{frames[-1].lineno}"


def function_location(function: Any) -> str | None:
    """``file:line`` of a function's definition (its first decorator line)."""
    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    return f"{_relative(code.co_filename)}:{code.co_firstlineno}"


def _get_params_location(param_file: str, config: dict[str, Any]) -> str | None:
    module = sys.modules.get(f"{config['params_module_name']}.{param_file}") or sys.modules.get(
        f"{config['experiments_module_name']}.{param_file}"
    )
    get_params = getattr(module, "get_params", None)
    if get_params is not None:
        return function_location(get_params)
    origin = getattr(module, "__file__", None)
    return _relative(origin) if origin else None


# ---------------------------------------------------------------------- parameter sets


def _param_file_exists(param_file: str, config: dict[str, Any]) -> bool:
    for package in (config["params_module_name"], config["experiments_module_name"]):
        try:
            if importlib.util.find_spec(f"{package}.{param_file}") is not None:
                return True
        except (ModuleNotFoundError, ValueError):
            continue
    return False


def _load_param_sets(
    report: CheckReport, files: list[str], config: dict[str, Any]
) -> tuple[list[Any], list[ParamSetSource]]:
    param_sets: list[Any] = []
    sources: list[ParamSetSource] = []
    for param_file in files:
        if not _param_file_exists(param_file, config):
            import_param_module(param_file, config)  # raises the not-found error (bad input)
        try:
            module = import_param_module(param_file, config)
            file_sets = get_param_sets_from_module(module, param_file)
        except ParameterFileError as exc:
            cause = exc.__cause__
            location = user_location(cause) if cause is not None else None
            report.problems.append(
                Problem(
                    ProblemKind.PARAMETER_FILE,
                    exc.detailed().replace("\n", " ").strip(),
                    location or _get_params_location(param_file, config),
                )
            )
            continue
        for index, param_set in enumerate(file_sets):
            param_sets.append(param_set)
            sources.append(ParamSetSource(param_file, index))
    return param_sets, sources


def _check_param_sets(
    report: CheckReport,
    param_sets: list[Any],
    sources: list[ParamSetSource],
    locations: dict[int, str | None],
) -> None:
    by_name: dict[str, list[int]] = {}
    for position, param_set in enumerate(param_sets):
        by_name.setdefault(str(param_set.name), []).append(position)
    for name, positions in by_name.items():
        if len(positions) < 2:
            continue
        where = ", ".join(
            f"{sources[i].param_file}[{sources[i].index}]" for i in positions
        )
        report.problems.append(
            Problem(
                ProblemKind.DUPLICATE_NAME,
                f"parameter set name {name!r} is used by {len(positions)} sets ({where}); "
                "names must be unique in a run (--names, logs, reports and the registry tell "
                "sets apart by name): rename one",
                locations[id(param_sets[positions[1]])],
            )
        )
    by_hash: dict[str, list[Any]] = {}
    for param_set, source in zip(param_sets, sources, strict=True):
        try:
            param_set.hash = hashing.hash_param_set(param_set)
        except (UnhashableParameterError, TypeError) as exc:
            report.problems.append(
                Problem(
                    ProblemKind.UNHASHABLE,
                    f"parameter set {param_set.name!r} ({source.param_file}[{source.index}]) "
                    f"cannot be hashed: {exc}",
                    locations[id(param_set)],
                )
            )
            continue
        by_hash.setdefault(str(param_set.hash), []).append(param_set)
    for digest, same in by_hash.items():
        named = sorted({str(p.name) for p in same})
        if len(named) > 1:
            report.warnings.append(
                Problem(
                    ProblemKind.SAME_HASH,
                    f"parameter sets {', '.join(repr(n) for n in named)} have the same hash "
                    f"{digest[:8]}, so they share every cached artifact; if they should differ, "
                    "check hash_representations and fields set to None",
                    locations[id(same[1])],
                )
            )


def _compare_with_registry(
    summary: CheckSummary, experiment_name: str, param_sets: list[Any], manager: Any
) -> None:
    from .store import RunStore

    path = os.path.join(str(manager.manager_cache_path), "store.db")
    hashes = {str(p.hash) for p in param_sets if p.hash is not None}
    if not os.path.exists(path) or not hashes or len(hashes) < len(param_sets):
        summary.registry = os.path.exists(path)
        return
    summary.registry = True
    with RunStore(manager.manager_cache_path) as store:
        runs = store.list_runs(experiment_name)
    same = [
        run
        for run in runs
        if {
            str(pair[1])
            for pairs in (run.get("params") or {}).values()
            for pair in pairs or []
            if isinstance(pair, (list, tuple)) and len(pair) == 2
        }
        == hashes
    ]
    summary.same_runs = len(same)
    if same:
        newest = max(same, key=lambda run: int(run.get("run_number", 0)))
        summary.same_run = str(newest["reference"])
        summary.same_run_status = str(newest.get("status"))


def _import_experiment(report: CheckReport, experiment_name: str, config: dict[str, Any]) -> Any:
    from .experiment import import_experiment

    try:
        return import_experiment(experiment_name, config)
    except CurifactoryError as exc:
        cause = exc.__cause__
        location = user_location(cause) if cause is not None else None
        if location is None:
            spec = importlib.util.find_spec(f"{config['experiments_module_name']}.{experiment_name}")
            location = _relative(spec.origin) if spec is not None and spec.origin else None
        report.problems.append(Problem(ProblemKind.EXPERIMENT, exc.detailed(), location))
        return None
