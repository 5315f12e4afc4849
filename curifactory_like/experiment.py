"""``run_experiment``: one run from parameter files to cached artifacts (curifactory's signature).

Flow: select and hash the parameter sets, create the ArtifactManager (run number, provenance,
registry row), run the experiment's ``run()`` once in map mode, build and plan the DAG, run
``run()`` again with every stage following the plan, then record artifacts and the final status.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import json
import logging
import os
import re
import sys
import traceback
from typing import Any

from . import gcpolicy, hashing, utils
from .caching import sidecars
from .discovery import list_experiments as list_experiments
from .discovery import list_params as list_params
from .discovery import regex_lister as regex_lister
from .errors import CurifactoryError, ExperimentError, UnknownStageError
from .filemodes import forbid_world_writable
from .manager import ArtifactManager
from .params import collect_parameter_sets, parse_index_ranges
from .run_ending import finish_run, record_failure, write_notebook
from .run_mapping import artifact_paths, map_experiment, start_progress

logger = logging.getLogger("curifactory_like.experiment")

CONFIGURATION_FILE = utils.CONFIGURATION_FILE


def build_run_string(experiment_name: str, **options: Any) -> str:
    """The command line equivalent to these ``run_experiment`` options (curifactory's order)."""
    parts = [f"experiment {experiment_name}"]
    repeated = [
        ("param_files", "-p"),
        ("param_set_names", "--names"),
        ("param_set_indices", "--indices"),
        ("stage_overwrites", "--overwrite-stage"),
    ]
    for key, flag in repeated:
        for value in options.get(key) or []:
            parts.append(f"{flag} {value}")
    if options.get("cache_dir_override") is not None:
        parts.append(f"--cache {options['cache_dir_override']}")
    if options.get("overwrite_override"):
        parts.append("--overwrite")
    if options.get("parallel") is not None:
        parts.append(f"--parallel {options['parallel']}")
    if options.get("parallel_mode"):
        parts.append("--parallel-safe")
    for value in options.get("global_param_set_indices") or []:
        parts.append(f"--global-indices {value}")
    flags = [
        ("store_full", "--store-full"),
        ("dry", "--dry"),
        ("dry_cache", "--dry-cache"),
    ]
    parts.extend(flag for key, flag in flags if options.get(key))
    if options.get("prefix") is not None:
        parts.append(f"--prefix {options['prefix']}")
    if options.get("code_changes") is not None:
        parts.append(f"--code-changes {options['code_changes']}")
    flags = [
        ("lazy", "--lazy"),
        ("ignore_lazy", "--ignore-lazy"),
        ("no_report", "--no-report"),
        ("no_dag", "--no-dag"),
        ("map_only", "--map"),
        ("hashes_only", "--hashes"),
        ("paths_only", "--paths"),
        ("print_params", "--print-params"),
        ("no_color", "--no-color"),
        ("quiet", "--quiet"),
        ("all_loggers", "--all-loggers"),
    ]
    parts.extend(flag for key, flag in flags if options.get(key))
    return " ".join(parts)


def _distributed_rank_detected() -> bool:
    return any(os.environ.get(var, "0") != "0" for var in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def find_experiment(experiment_name: str, config: dict[str, Any]) -> Any:
    """The import spec of ``<experiments_module_name>.<experiment_name>``, or ExperimentError."""
    module_name = f"{config['experiments_module_name']}.{experiment_name}"
    try:
        spec = importlib.util.find_spec(module_name)
    except (ModuleNotFoundError, ValueError):
        spec = None
    if spec is None:
        raise ExperimentError(
            f"experiment '{experiment_name}' not found: no module {module_name} (looked in "
            f"{os.getcwd()}); `experiment ls` lists the experiments, and "
            "curifactory_config.json sets experiments_module_name"
        )
    return spec


def import_experiment(experiment_name: str, config: dict[str, Any]) -> Any:
    """Import ``<experiments_module_name>.<experiment_name>`` and check it has ``run()``."""
    spec = find_experiment(experiment_name, config)
    try:
        module = importlib.import_module(spec.name)
    except Exception as exc:
        raise ExperimentError(
            f"experiment '{experiment_name}' ({spec.origin}) failed to import: "
            f"{type(exc).__name__}: {exc}; fix that file"
        ) from exc
    if not callable(getattr(module, "run", None)):
        raise ExperimentError(
            f"experiment '{experiment_name}' ({spec.origin}) has no run() function; define "
            "`def run(param_sets, manager): ...`"
        )
    return module


def _user_frame(exc: BaseException) -> str:
    """`` in FILE:LINE (FUNCTION)`` of the innermost traceback frame outside this package."""
    package = os.path.dirname(os.path.abspath(__file__))
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not os.path.abspath(frame.filename).startswith(package + os.sep):
            return f" in {os.path.relpath(frame.filename)}:{frame.lineno} ({frame.name})"
    return ""


_DEFINES_RUN = re.compile(
    r"^\s*(async\s+)?def\s+run\s*\(|^\s*run\s*=|^\s*from\s.*\bimport\b.*\brun\b", re.M
)
"""A module source that defines (or imports) a ``run``."""


def _missing_run_error(experiment_name: str, config: dict[str, Any]) -> ExperimentError | None:
    """The error to show when an experiment file without run() was also taken as params."""
    try:
        spec = find_experiment(experiment_name, config)
        with open(spec.origin, encoding="utf-8") as source:
            text = source.read()
    except (CurifactoryError, OSError, TypeError):
        return None
    if _DEFINES_RUN.search(text):
        return None
    return ExperimentError(
        f"experiment '{experiment_name}' ({spec.origin}) has no run() function; define "
        "`def run(param_sets, manager): ...` (and a get_params() there, or pass parameter "
        "files with -p)"
    )


def run_experiment(  # noqa: C901 - curifactory's signature, one branch per mode
    experiment_name: str,
    param_files: list[str] | None = None,
    overwrite_override: bool | None = None,
    cache_dir_override: str | None = None,
    mngr: ArtifactManager | None = None,
    log: bool = False,
    log_debug: bool = False,
    dry: bool = False,
    dry_cache: bool = False,
    store_full: bool = False,
    log_errors: bool = False,
    prefix: str | None = None,
    build_docker: bool = False,
    build_notebook: bool = False,
    run_string: str | None = None,
    stage_overwrites: list[str] | None = None,
    param_set_names: list[str] | None = None,
    param_set_indices: list[str] | None = None,
    global_param_set_indices: list[str] | None = None,
    parallel: int | None = None,
    parallel_mode: bool = False,
    parallel_lock: Any = None,
    parallel_queue: Any = None,
    run_num_override: int | None = None,
    run_ts_override: datetime.datetime | None = None,
    lazy: bool = False,
    ignore_lazy: bool = False,
    report: bool = True,
    no_dag: bool = False,
    map_only: bool = False,
    hashes_only: bool = False,
    paths_only: bool = False,
    print_params: bool | str = False,
    no_color: bool = False,
    quiet: bool = False,
    progress: bool = False,
    plain: bool = False,
    notes: str | None = None,
    all_loggers: bool = False,
    log_file: bool = True,
    dask: str | None = None,
    fail_fast: bool = False,
    retries: int | None = None,
    timeout: float | None = None,
    code_changes: str | None = None,
    param_sets: list[Any] | None = None,
) -> tuple[Any, ArtifactManager]:
    """Run an experiment and return ``(results of run(), manager)``.

    Errors in the parameter files or the selection raise (after the run is recorded with
    status ``error``); errors while mapping or running stages are logged, leave
    ``manager.status == "error"`` with ``manager.error`` set, and return ``(None, manager)``.
    ``param_sets`` (``experiment reproduce``) replaces the parameter files: exactly these
    parameter set objects are run.
    """
    forbid_world_writable()
    if map_only or hashes_only or print_params or paths_only:
        dry = True
    if hashes_only or print_params or paths_only:
        quiet = True
    if parallel is not None and parallel < 1:
        raise ExperimentError(f"--parallel {parallel}: give a number of worker processes >= 1")
    scheduled = bool(parallel or dask) and not (map_only or paths_only or hashes_only)
    if scheduled and (dry or dry_cache or no_dag):
        # workers hand their outputs over through the cache and need the DAG: run serially
        logging.getLogger(__name__).warning(
            "--parallel/--dask ignored: with --dry, --dry-cache or --no-dag the run is serial "
            "(workers hand their outputs over through a writable cache and need the DAG)"
        )
        scheduled = False
        parallel = dask = None
    if run_string is None:
        run_string = build_run_string(
            experiment_name, **{k: v for k, v in locals().items() if k != "experiment_name"},
            no_report=not report,
        )
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    if _distributed_rank_detected():
        parallel_mode = True
        store_full = False
    if build_docker:
        raise ExperimentError("--build-docker is not available in curifactory_like")

    if mngr is None:
        mngr = ArtifactManager(
            experiment_name,
            store_full=store_full,
            dry=dry,
            dry_cache=dry_cache,
            prefix=prefix,
            run_line=run_string,
            parallel_lock=parallel_lock,
            parallel_mode=parallel_mode,
            lazy=lazy,
            ignore_lazy=ignore_lazy,
            status_override=None,
            notes=notes,
            disable_non_cf_loggers=not all_loggers,
        )
        mngr.parameter_files = list(param_files or [])
        mngr.runtime.retries_override = retries
        mngr.runtime.timeout_override = timeout
        if run_num_override is not None:
            mngr.experiment_run_number = run_num_override
        if run_ts_override is not None:
            mngr.run_timestamp = run_ts_override
        if stage_overwrites is not None:
            mngr.overwrite_stages = list(stage_overwrites)
    if cache_dir_override is not None:
        mngr.cache_path = cache_dir_override
    if code_changes is not None:
        from .fingerprint import check_policy

        mngr.code_changes = check_policy(code_changes, "--code-changes")

    if log:
        log_path = None
        if not dry and log_file:
            log_path = os.path.join(str(mngr.logs_path), f"{mngr.get_reference_name()}.log")
        utils.init_logging(
            log_path,
            logging.DEBUG if log_debug else logging.INFO,
            log_errors,
            include_process=parallel_mode,
            quiet=quiet,
            no_color=no_color,
            plain=plain,
            disable_non_cf_loggers=not all_loggers,
        )
        mngr.log_path = log_path
    logger.info("Running experiment %s", experiment_name)
    if mngr.git_commit_hash == "No git repository found":
        logger.warning(
            "No git repository found. It is strongly recommended to run experiments from a git "
            "repository to aid reproducibility."
        )
    elif mngr.git_workdir_dirty:
        logger.warning(
            "Git working directory contains uncommited changes. Reproduction may not be exact."
        )
    implied_params = not param_files
    if not param_files:
        logger.info(
            "No parameter files listed, assuming an implied experiment file get_params(), "
            "inserting '%s'",
            experiment_name,
        )
        param_files = [experiment_name]
        mngr.parameter_files = list(param_files)

    try:
        find_experiment(experiment_name, mngr.config)
        if param_sets is not None:
            final_param_sets, by_file = list(param_sets), dict(mngr.param_file_param_sets)
        else:
            final_param_sets, by_file = collect_parameter_sets(
                param_files,
                mngr.config,
                names=param_set_names,
                indices=parse_index_ranges(param_set_indices, "--indices"),
                global_indices=parse_index_ranges(global_param_set_indices, "--global-indices"),
                overwrite=bool(overwrite_override),
            )
    except Exception as exc:
        missing_run = _missing_run_error(experiment_name, mngr.config) if implied_params else None
        record_failure(mngr, missing_run or exc, report and not dry)
        if missing_run is not None:
            raise missing_run from exc
        raise
    mngr.param_file_param_sets = by_file
    mngr.run_param_sets = list(final_param_sets)  # type: ignore[attr-defined]

    if hashes_only:
        hashes = {}
        for param_set in final_param_sets:
            hashes[param_set.hash] = param_set.name
            print(param_set.hash, param_set.name)
        return hashes, mngr
    if print_params:
        return _print_params(final_param_sets, print_params, mngr, log_debug), mngr

    for param_set in final_param_sets:
        mngr.register_param_set(param_set)
    if not parallel_mode:
        mngr.store()
        logger.info("Experiment run reference name is '%s'", mngr.get_reference_name())
    logger.info("Run command is '%s'", run_string)
    if dry:
        logger.info(
            "NOTE - running in dry mode. This log will not be saved, and no new files will be "
            "cached. (Existing caches will still be read.)"
        )

    try:
        experiment_module = import_experiment(experiment_name, mngr.config)
    except Exception as exc:
        record_failure(mngr, exc, report and not dry)
        raise
    gcpolicy.imports_done()
    mngr.runtime.release_consumed = gcpolicy.in_batch_mode()
    results: Any = None
    try:
        if not parallel_mode:
            sidecars.load_index(str(mngr.cache_path), mngr._get_name())
        if not no_dag:
            map_experiment(experiment_module, final_param_sets, mngr)
            if map_only:
                logger.info("Map-only mode, skipping remainder of experiment.")
                return mngr.map, mngr
            if paths_only:
                return artifact_paths(mngr), mngr
            if report and not dry and not parallel_mode:
                from .reporting.graph_prefetch import start_prefetch

                mngr.graph_prefetch = start_prefetch(mngr)
            if scheduled:
                _schedule(mngr, parallel, dask, fail_fast, progress)
            elif progress:
                start_progress(mngr)
        results = experiment_module.run(final_param_sets, mngr)
        if not mngr.error_thrown:
            mngr.status = "complete"
    except UnknownStageError as exc:
        mngr.map_mode = False
        record_failure(mngr, exc, report and not dry)
        raise
    except Exception as exc:
        mngr.map_mode = False
        results = None
        failed = mngr.runtime.failed_call
        where = f" in stage '{failed[0]}' of {failed[1]}" if failed else _user_frame(exc)
        if not where:  # raised by the call itself: run() does not take (param_sets, manager)
            where = (
                f" calling run() of {getattr(experiment_module, '__file__', experiment_name)}; "
                "it must be `def run(param_sets, manager)`"
            )
        logger.error("%s%s: %s", type(exc).__name__, where, exc)
        logger.debug(traceback.format_exc())
        if not mngr.error_thrown:
            mngr.status = "error"
            mngr.error = f"{type(exc).__name__} - {exc}"
            failed_calls = [o for o in mngr.call_outcomes if o.state.value == "failed"]
            if failed_calls:
                mngr.error = f"{len(failed_calls)} stage call(s) failed: " + "; ".join(
                    f"stage '{o.stage}' of {o.record}: "
                    f"{(o.error or '').strip().splitlines()[-1] if o.error else ''}"
                    for o in failed_calls
                )
            failed = mngr.runtime.failed_call
            if failed is not None:
                mngr.error += f" (in stage '{failed[0]}' of {failed[1]})"
            mngr.error_exception = exc
    finally:
        if mngr.map_progress is not None:
            mngr.map_progress.stop()
    if mngr.call_outcomes:
        mngr.runtime.add_unreplayed_outcomes(mngr.call_outcomes, mngr.dag)
    if not parallel_mode:
        finish_run(mngr, write_report=report and not dry)
        if build_notebook and not dry:
            write_notebook(mngr, errored=mngr.status == "error")
    mngr.map = None
    return results, mngr


def _schedule(
    mngr: ArtifactManager,
    parallel: int | None,
    dask: str | None,
    fail_fast: bool,
    progress: bool = False,
) -> None:
    """Run every call that must execute on the chosen executor, before the replay."""
    import tempfile

    from .executors import make_executor
    from .scheduler import Scheduler, worker_context

    executor = make_executor(parallel=parallel, dask=dask)
    os.makedirs(str(mngr.cache_path), exist_ok=True)
    carry_dir = tempfile.mkdtemp(prefix=f".{mngr.get_reference_name()}-", dir=str(mngr.cache_path))
    mngr.temporary_paths.append(carry_dir)
    logger.info("Running the computing stage calls on the %s executor", executor.name)
    outcomes = Scheduler(mngr, executor, fail_fast=fail_fast, progress=progress).run(
        worker_context(mngr, carry_dir)
    )
    mngr.runtime.scheduled = outcomes
    mngr.call_outcomes = list(outcomes.values())


def _print_params(
    param_sets: list[Any], which: bool | str, mngr: ArtifactManager, debug: bool
) -> Any:
    def show(param_set: Any) -> None:
        shown = hashing.param_set_string_hash_representations(param_set)
        if debug:
            shown["_DRY_REPS"] = hashing.get_param_set_hash_values(param_set)
        print(param_set.hash, param_set.name)
        print(json.dumps(shown, indent=4, default=str))

    if not isinstance(which, str):
        for param_set in param_sets:
            show(param_set)
        return param_sets
    for param_set in param_sets:
        if param_set.name == which:
            show(param_set)
            return param_set
    from .store import RunStore

    with RunStore(str(mngr.manager_cache_path)) as store:
        entry = store.get_param_set(which)
    if entry is None:
        from .errors import ParameterSelectionError

        raise ParameterSelectionError(
            f"parameter set name or hash starting with '{which}' not found in the selected "
            "parameter files or the run registry"
        )
    print(entry["hash"], entry["name"])
    print(json.dumps(entry["representation"], indent=4, default=str))
    return entry["hash"], entry
