"""The ``experiment`` command: argument wiring only; the work happens in ``run_experiment``.

``experiment run EXP`` runs an experiment (``experiment EXP`` also works, as in curifactory);
``map``, ``hashes``, ``paths`` and ``params`` inspect one without running it; ``ls`` lists
experiments and parameter files. Heavy imports happen inside the command that needs them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .completion import completer_experiments, completer_params

__all__ = ["build_parser", "completer_experiments", "completer_params", "main", "selection_options"]

COMMANDS = ("run", "map", "hashes", "paths", "params", "ls", "runs", "reports")
#: Modules of this package that add further commands. Each has ``register(sub)``, which adds
#: its sub-parsers and sets ``handler=<callable(args) -> exit status>`` as their default.
COMMAND_MODULES = ("reproduce", "archive", "plan", "check", "clean")
EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_name", help="experiment module name (experiments/<EXP>.py)")
    parser.add_argument(
        "-p", "--params", dest="parameters_name", action="append", metavar="PARAMS",
        help="parameter file name (params/<PARAMS>.py); repeat for several; default: <EXP>",
    )
    parser.add_argument("-n", "--names", action="append", metavar="NAME",
                        help="only the parameter set with this name; repeat for several")
    parser.add_argument("--indices", action="append", metavar="I|A-B",
                        help="only these indices of each parameter file (A-B is end-exclusive)")
    parser.add_argument("--global-indices", action="append", metavar="I|A-B",
                        help="only these indices over all selected parameter sets")
    parser.add_argument("--overwrite", action="store_true",
                        help="recompute every stage (ignore cached artifacts)")
    parser.add_argument("--overwrite-stage", action="append", metavar="STAGE",
                        help="recompute this stage and everything downstream; repeatable")
    parser.add_argument("-c", "--cache", metavar="DIR", help="use DIR as the cache directory")
    parser.add_argument("--prefix", help="cache file prefix instead of the experiment name")
    parser.add_argument("--lazy", action="store_true",
                        help="make every stage output Lazy (PickleCacher where none is given)")
    parser.add_argument("--ignore-lazy", action="store_true",
                        help="keep Lazy outputs in memory instead")
    parser.add_argument("--code-changes", choices=("rerun", "warn", "ignore"),
                        help="when a stage's code changed since its artifact was cached: "
                        "recompute it (default), warn and load, or ignore")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and tracebacks with errors")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``experiment`` command."""
    parser = argparse.ArgumentParser(
        prog="experiment",
        description="Run and inspect parameterised experiments with a hashed artifact cache.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run an experiment")
    _add_selection(run)
    run.add_argument("--dry", action="store_true",
                     help="write nothing: no cache files, registry rows, log or report")
    run.add_argument("--dry-cache", action="store_true", help="write no cache files")
    run.add_argument("-s", "--store-full", action="store_true",
                     help="also copy artifacts and environment into data/runs/<ref>/")
    run.add_argument("--no-dag", action="store_true",
                     help="do not map the DAG first; check the cache stage by stage")
    run.add_argument("--notes", nargs="?", const="",
                     help="notes stored with the run (the first line shows in `experiment runs`)")
    run.add_argument("--no-log", action="store_true", help="do not write logs/<ref>.log")
    run.add_argument("--quiet", action="store_true", help="no console log output")
    run.add_argument("--plain", action="store_true", help="plain console log instead of rich")
    run.add_argument("--no-color", action="store_true", help="no colours in console output")
    run.add_argument("--progress", action="store_true", help="rich progress bars per record")
    run.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    run.add_argument("--all-loggers", action="store_true", help="keep other libraries' loggers")
    run.add_argument("--parallel", type=int, metavar="N",
                     help="run the computing stage calls on N local worker processes")
    run.add_argument("--dask", metavar="ADDRESS",
                     help="run them on a Dask scheduler (tcp://host:port), or 'local:N' to "
                     "start a LocalCluster of N workers (needs the [dask] extra)")
    run.add_argument("--fail-fast", action="store_true",
                     help="stop scheduling new stage calls after the first failure")
    run.add_argument("--retries", type=int, metavar="N",
                     help="retry every failing stage call up to N times (transient errors)")
    run.add_argument("--timeout", type=float, metavar="SECONDS",
                     help="fail any stage call that runs longer than SECONDS")
    run.add_argument("--notebook", action="store_true",
                     help="also write notebooks/experiments/<ref>.ipynb to explore the run")
    # curifactory's flag forms of the inspection commands, so its command lines keep working
    run.add_argument("--map", dest="as_map", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--hashes", dest="as_hashes", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--paths", dest="as_paths", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--print-params", dest="as_params", nargs="?", const=True,
                     help=argparse.SUPPRESS)
    run.add_argument("--log-errors", action="store_true", help=argparse.SUPPRESS)
    for name, text in (
        ("map", "show what would compute, load or be skipped, and why"),
        ("hashes", "print the hash of every selected parameter set"),
        ("paths", "print the cache paths the experiment uses"),
    ):
        _add_selection(sub.add_parser(name, help=text))
    params = sub.add_parser("params", help="show parameter sets as hashed")
    _add_selection(params)
    params.add_argument("name_or_hash", nargs="?", help="one set by name or hash prefix")
    sub.add_parser("ls", help="list experiments and parameter files")
    runs = sub.add_parser("runs", help="list past runs from the registry")
    runs.add_argument("experiment_name", nargs="?", help="only runs of this experiment")
    runs.add_argument("--limit", type=int, default=50, help="show the newest N runs (default 50)")
    reports = sub.add_parser("reports", help="serve the reports folder on localhost")
    reports.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    reports.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    reports.add_argument("--update", action="store_true",
                         help="rebuild reports/index.html from the registry and exit")
    for module in _command_modules():
        module.register(sub)
    return parser


def _command_modules() -> list[Any]:
    import importlib

    return [importlib.import_module(f"{__name__}.{name}") for name in COMMAND_MODULES]


def _command_names(parser: argparse.ArgumentParser) -> set[str]:
    names: set[str] = set(COMMANDS)
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        names.update(getattr(action, "choices", {}) or {})
    return names


def selection_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``run_experiment`` keyword arguments of the options ``_add_selection`` adds."""
    return dict(
        param_files=args.parameters_name,
        overwrite_override=args.overwrite,
        cache_dir_override=args.cache,
        stage_overwrites=args.overwrite_stage,
        param_set_names=args.names,
        param_set_indices=args.indices,
        global_param_set_indices=args.global_indices,
        prefix=args.prefix,
        lazy=args.lazy,
        ignore_lazy=args.ignore_lazy,
        code_changes=args.code_changes,
    )


def _normalise_argv(argv: list[str], commands: set[str] | frozenset[str] = frozenset(COMMANDS)) -> list[str]:
    """``experiment EXP ...`` (curifactory's form) means ``experiment run EXP ...``."""
    if argv and not argv[0].startswith("-") and argv[0] not in commands:
        return ["run", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``experiment`` command; returns (and exits with) the exit status."""
    raw = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(_normalise_argv(raw, _command_names(parser)))
    command = getattr(args, "command", None) or getattr(args, "experiment_name", None)
    handler = getattr(args, "handler", None)
    if handler is not None:
        status = int(handler(args))
        if argv is None:
            sys.exit(status)
        return status
    if command == "ls":
        return _list()
    if command == "runs":
        return _runs(args.experiment_name, args.limit)
    if command == "reports":
        return _reports(args.host, args.port, args.update)
    if command is None:
        parser.print_help()
        return EXIT_OK
    status = _run_command(command, args, raw)
    if argv is None:
        sys.exit(status)
    return status


def console_main() -> NoReturn:
    """The ``experiment`` console script: ``main()``, then a quick interpreter exit.

    Only the console script does this (see ``gcpolicy.before_process_exit``); a process that
    calls ``main()`` itself (tests, notebooks) goes on as before.
    """
    from ..gcpolicy import before_process_exit

    try:
        status = main()
    finally:
        before_process_exit()
    sys.exit(status)


def _list() -> int:
    from ..experiment import list_experiments, list_params

    sys.path.insert(0, os.getcwd())
    print("EXPERIMENTS:")
    for name in list_experiments():
        print(f"\t{name}")
    print("\nPARAMS:")
    for name in list_params():
        print(f"\t{name}")
    return EXIT_OK


def _runs(experiment_name: str | None, limit: int) -> int:
    from .. import utils
    from ..store import RunStore
    from .render import print_runs

    config = utils.get_configuration()
    with RunStore(config["manager_cache_path"]) as store:
        runs = store.list_runs(experiment_name)
    print_runs(runs[-limit:][::-1] if limit > 0 else runs[::-1])
    return EXIT_OK


def _reports(host: str, port: int, update_only: bool) -> int:
    from .. import utils
    from ..reporting.report import serve_reports, update_report_index

    config = utils.get_configuration()
    path = update_report_index(config["reports_path"], config["manager_cache_path"])
    if update_only:
        print(f"updated {path}")
        return EXIT_OK
    serve_reports(config["reports_path"], host=host, port=port)
    return EXIT_OK


def _run_command(command: str, args: argparse.Namespace, raw: list[str]) -> int:
    from ..errors import CurifactoryError
    from ..experiment import run_experiment
    from .render import print_dag, print_error, print_run_summary

    if command == "run":
        for flag, alias in (("as_map", "map"), ("as_hashes", "hashes"), ("as_paths", "paths")):
            if getattr(args, flag, False):
                command = alias
        if getattr(args, "as_params", None) is not None:
            command = "params"
            args.name_or_hash = None if args.as_params is True else args.as_params

    inspect_only = command != "run"
    options: dict[str, Any] = dict(
        **selection_options(args),
        log_debug=args.verbose,
        run_string=shlex.join(["experiment", *raw]),
        map_only=command == "map",
        hashes_only=command == "hashes",
        paths_only=command == "paths",
        print_params=(getattr(args, "name_or_hash", None) or True) if command == "params" else False,
    )
    if inspect_only:
        options.update(log=True, log_debug=args.verbose, quiet=not args.verbose)
    else:
        options.update(
            log=True,
            dry=args.dry,
            dry_cache=args.dry_cache,
            store_full=args.store_full,
            no_dag=args.no_dag,
            notes=args.notes,
            quiet=args.quiet,
            plain=args.plain,
            no_color=args.no_color,
            progress=args.progress,
            report=not args.no_report,
            all_loggers=args.all_loggers,
            build_notebook=args.notebook,
            log_errors=args.log_errors,
            parallel=args.parallel,
            dask=args.dask,
            fail_fast=args.fail_fast,
            retries=args.retries,
            timeout=args.timeout,
        )
        if args.no_log:
            options["log_file"] = False
    from ..gcpolicy import batch_mode

    try:
        with batch_mode():
            results, manager = run_experiment(args.experiment_name, **options)
    except CurifactoryError as exc:
        if args.verbose:
            import traceback

            traceback.print_exc()
        print_error(exc.detailed())
        return EXIT_BAD_INPUT
    if command == "map":
        if manager.status == "error" or results is None:
            print_error(str(manager.error))
            return EXIT_RUN_FAILED
        print_dag(results)
    elif command == "paths":
        if manager.status == "error":
            print_error(str(manager.error))
            return EXIT_RUN_FAILED
        for path in results:
            print(path)
    elif command == "run":
        if not args.quiet:
            print_run_summary(manager, plain=args.plain)
        if manager.status != "complete":
            if args.quiet:
                print_error(f"run {manager.get_reference_name()} failed: {manager.error}")
            failure = manager.error_exception
            if args.verbose and failure is not None:
                import traceback

                traceback.print_exception(type(failure), failure, failure.__traceback__)
            return EXIT_RUN_FAILED
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    console_main()
