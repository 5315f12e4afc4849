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
import warnings
from typing import Any

from . import gcpolicy, hashing, utils
from .caching import sidecars
from .errors import CurifactoryError, ExperimentError, UnknownStageError
from .filemodes import forbid_world_writable
from .manager import ArtifactManager
from .params import collect_parameter_sets, parse_index_ranges

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
        _record_failure(mngr, missing_run or exc, report and not dry)
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
        _record_failure(mngr, exc, report and not dry)
        raise
    gcpolicy.imports_done()
    mngr.runtime.release_consumed = gcpolicy.in_batch_mode()
    results: Any = None
    try:
        if not parallel_mode:
            sidecars.load_index(str(mngr.cache_path), mngr._get_name())
        if not no_dag:
            _map_experiment(experiment_module, final_param_sets, mngr)
            if map_only:
                logger.info("Map-only mode, skipping remainder of experiment.")
                return mngr.map, mngr
            if paths_only:
                return _paths(mngr), mngr
            if scheduled:
                _schedule(mngr, parallel, dask, fail_fast, progress)
            elif progress:
                _start_progress(mngr)
        results = experiment_module.run(final_param_sets, mngr)
        if not mngr.error_thrown:
            mngr.status = "complete"
    except UnknownStageError as exc:
        mngr.map_mode = False
        _record_failure(mngr, exc, report and not dry)
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
        _finish_run(mngr, write_report=report and not dry)
        if build_notebook and not dry:
            _write_notebook(mngr, errored=mngr.status == "error")
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


def _finish_run(mngr: ArtifactManager, write_report: bool) -> None:
    """Record artifacts and the final status, then write the report (even for a failed run)."""
    import shutil

    mngr.run_end_timestamp = datetime.datetime.now()
    for path in mngr.temporary_paths:
        shutil.rmtree(path, ignore_errors=True)
    mngr.temporary_paths.clear()
    mngr.record_artifacts()
    if not (mngr.dry or mngr.dry_cache):
        sidecars.save_index(str(mngr.cache_path), mngr._get_name())
    if gcpolicy.in_batch_mode():  # nothing reads sidecars from here on: room for the report
        sidecars.forget_sidecars()
    try:
        from .explain import record_run_code

        record_run_code(mngr)
    except Exception as exc:  # code provenance must not hide the run's own outcome
        logger.warning("Could not record the stages' code fingerprints: %s", exc)
    if write_report:
        try:
            mngr.generate_report()
        except Exception as exc:  # a broken report must not hide the run's own outcome
            logger.error("The run report could not be written: %s: %s", type(exc).__name__, exc)
            logger.debug(traceback.format_exc())
    if mngr.store_full and not mngr.dry and mngr.stored:
        from .runstore import complete_run_folder

        try:
            complete_run_folder(mngr)
        except Exception as exc:  # the run's own outcome stands; say what the folder lacks
            logger.error(
                "The run folder of %s could not be completed (it has no manifest, so it cannot "
                "be reproduced or exported): %s: %s",
                mngr.get_reference_name(), type(exc).__name__, exc,
            )
            logger.debug(traceback.format_exc())
    # the final status is written last: a run killed before this point stays `incomplete`
    mngr.store()
    if write_report and not mngr.dry:
        _refresh_report_index(mngr)


def _refresh_report_index(mngr: ArtifactManager) -> None:
    """Rewrite the runs index if a run that finished meanwhile changed it (concurrent runs)."""
    from .reporting.report_index import update_report_index

    try:
        update_report_index(mngr.reports_path, mngr.manager_cache_path, only_if_changed=True)
    except Exception as exc:  # the index is a derived page; the run itself is recorded
        logger.error("The runs index could not be updated: %s: %s", type(exc).__name__, exc)


def _write_notebook(mngr: ArtifactManager, errored: bool) -> None:
    from .notebook import write_experiment_notebook

    folder = os.path.join(str(mngr.notebooks_path), "experiments")
    os.makedirs(folder, exist_ok=True)
    write_experiment_notebook(mngr, os.path.join(folder, mngr.get_reference_name()), errored=errored)


def _record_failure(mngr: ArtifactManager, exc: BaseException, write_report: bool) -> None:
    """Mark a run that failed before any stage ran as ``error``: registry row and report."""
    mngr.status = "error"
    mngr.error = f"{type(exc).__name__} - {exc}"
    mngr.error_exception = exc
    logger.error("%s", exc.detailed() if isinstance(exc, CurifactoryError) else exc)
    if mngr.parallel_mode:
        return
    try:
        _finish_run(mngr, write_report)
    except Exception:  # the original error matters more than a registry problem
        logger.debug("could not record the failed run", exc_info=True)


def _map_experiment(module: Any, param_sets: list[Any], mngr: ArtifactManager) -> None:
    logger.info("Pre-mapping stages and records")
    mngr.map_mode = True
    try:
        module.run(param_sets, mngr)
    finally:
        mngr.map_mode = False
    mngr.map_records()
    assert mngr.map is not None
    known = {stage for record in mngr.map.records for stage in record.stages}
    unknown = [name for name in mngr.overwrite_stages if name not in known]
    if unknown:
        raise UnknownStageError(
            f"--overwrite-stage {unknown[0]!r} names no stage of this experiment; its stages "
            f"are: {', '.join(sorted(known))}"
        )
    _warn_about_unneeded_damage(mngr)
    logger.info("Stage map collected")


def _warn_about_unneeded_damage(mngr: ArtifactManager) -> None:
    """Name damaged cached artifacts this run will not read (so will not recompute either)."""
    from .errors import CacheIntegrityWarning
    from .plan import Action

    dag = mngr.map
    if dag is None or dag.plan is None:
        return
    for call in dag.calls:
        decision = dag.plan.decisions.get(call.key)
        if decision is None or decision.action is not Action.SKIP:
            continue
        for index in call.output_artifacts:
            artifact = dag.artifacts[index]
            problem = getattr(artifact, "problem", None)
            if problem:
                warnings.warn(
                    f"stage '{call.stage_name}': cached artifact {getattr(artifact, 'path', '?')} "
                    f"failed its integrity check ({problem}); this run does not need it, so it "
                    "is never loaded and is recomputed by the first run that needs it",
                    CacheIntegrityWarning,
                    stacklevel=2,
                )


def _paths(mngr: ArtifactManager) -> list[str]:
    assert mngr.map is not None
    paths: list[str] = []
    for artifact in mngr.map.artifacts:
        if artifact.cacher is None:
            continue
        for path in [*artifact.cacher.cache_paths, artifact.cacher.get_path("_metadata.json")]:
            if path not in paths:
                paths.append(path)
    return paths


def _start_progress(mngr: ArtifactManager) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    assert mngr.map is not None
    progress = Progress(
        TextColumn("{task.completed}/{task.total}"),
        BarColumn(bar_width=30),
        TextColumn("[progress.description]{task.description}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[name]}"),
    )
    record_tasks = {}
    for index, record in enumerate(mngr.map.records):
        name = record.params.name if record.params is not None else "None"
        if record.is_aggregate:
            name += " (aggregate)"
        record_tasks[index] = progress.add_task(
            f"Record {index}, params: {name}, hash: {record.get_hash()[:8]}",
            total=len(record.stages),
            name="",
        )
    progress.record_tasks = record_tasks  # type: ignore[attr-defined]
    mngr.map_progress_overall_task_id = progress.add_task(
        f"Total ({mngr.get_reference_name()})", total=len(mngr.map.records), name=""
    )
    mngr.map_progress = progress
    progress.start()


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


def regex_lister(module_name: str, regex: str, try_import: bool = True) -> list[str]:
    """Names of modules under ``module_name`` with a line matching ``regex``, with docstrings."""
    path = module_name.replace(".", "/")
    if not os.path.exists(path):
        print(f"\t[WARNING - path: '{path}' does not exist. Double check curifactory_config.json]")
        return []
    pattern = re.compile(regex)
    names = []
    for dirpath, _, filenames in os.walk(path):
        for filename in filenames:
            if not filename.endswith(".py"):
                continue
            full = os.path.join(dirpath, filename)
            with open(full, encoding="utf-8") as infile:
                text = infile.read()
            if not any(pattern.search(line) for line in text.splitlines()):
                continue
            name = os.path.relpath(full[:-3], path).replace(os.sep, ".")
            entry = name
            if try_import:
                try:
                    importlib.import_module(f"{module_name}.{name}")
                    comment = _opening_docstring(text)
                    entry = f"{name} - {comment}" if comment else name
                except Exception as exc:
                    entry = f"{name} [ERROR - {exc}]"
            names.append(entry)
    return names


def _opening_docstring(text: str) -> str:
    import ast

    try:
        doc = ast.get_docstring(ast.parse(text))
    except SyntaxError:
        return ""
    return doc.strip().splitlines()[0] if doc else ""


def list_experiments() -> list[str]:
    """Experiments (modules with ``def run(``) of the configured experiments module."""
    config = utils.get_configuration()
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    return sorted(regex_lister(config["experiments_module_name"], r"^def run\(.*\)"))


def list_params() -> list[str]:
    """Parameter files (modules with ``def get_params(``) in the params and experiments modules."""
    config = utils.get_configuration()
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    names = regex_lister(config["params_module_name"], r"^def get_params\(.*\)")
    names.extend(regex_lister(config["experiments_module_name"], r"^def get_params\(.*\)"))
    return sorted(names)
