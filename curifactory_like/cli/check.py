"""``experiment check EXP``: report what would stop a run, and what the run would do.

The checking happens in :mod:`curifactory_like.check`; this module wires the arguments and
prints the report. Exit status: 0 no problem, 1 problems found, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_BAD_INPUT = 2


def register(sub: Any) -> None:
    """Add the ``check`` command (with the selection options of ``run`` and ``map``)."""
    from . import _add_selection

    parser = sub.add_parser(
        "check",
        help="validate an experiment without running it",
        description="Import the experiment and parameter files, validate the parameter sets, "
        "map the DAG, check stage inputs and cachers, and summarise what a run would do. "
        "Exits 1 when a problem is found.",
    )
    _add_selection(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=check_command)


def check_command(args: argparse.Namespace) -> int:
    """Run the check and print its report."""
    import logging

    from ..check import check_experiment
    from ..errors import CurifactoryError
    from .render import print_error

    logging.getLogger("curifactory_like").setLevel(
        logging.DEBUG if args.verbose else logging.CRITICAL
    )
    try:
        report = check_experiment(
            args.experiment_name,
            param_files=args.parameters_name,
            names=args.names,
            indices=args.indices,
            global_indices=args.global_indices,
            overwrite=args.overwrite,
            overwrite_stages=args.overwrite_stage,
            cache_dir=args.cache,
            prefix=args.prefix,
            lazy=args.lazy,
            ignore_lazy=args.ignore_lazy,
        )
    except CurifactoryError as exc:
        if args.verbose:
            import traceback

            traceback.print_exc()
        print_error(exc.detailed())
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _print_report(report: Any) -> None:
    count = len(report.problems)
    verdict = "ok" if report.ok else f"{count} problem{'s' if count != 1 else ''}"
    print(f"experiment check {report.experiment}: {verdict}")
    for problem in report.problems:
        print(f"  error {problem}")
    for warning in report.warnings:
        print(f"  warning {warning}")
    summary = report.summary
    if summary is None:
        return
    files = ", ".join(f"{name}: {n}" for name, n in summary.param_sets_by_file.items())
    print(f"parameter sets: {summary.param_sets} ({files})")
    if not summary.planned:
        print("records, stages, artifacts: not mapped (fix the problems above first)")
    else:
        print(f"records: {summary.records} ({summary.aggregates} aggregate"
              f"{'s' if summary.aggregates != 1 else ''})")
        print(f"stages: {len(summary.stages)} ({', '.join(summary.stages)}); "
              f"stage calls: {summary.stage_calls}")
        actions = ", ".join(f"{n} {action}" for action, n in summary.actions.items())
        print(f"artifacts: {summary.artifacts} cached outputs, {summary.cached} in the cache, "
              f"{summary.to_compute} to compute (stage calls: {actions})")
    if not summary.registry:
        print("same run before: unknown (no run registry yet)")
    elif summary.same_run is None:
        print("same run before: no (no earlier run of this experiment had exactly these "
              "parameter sets)")
    else:
        times = f", {summary.same_runs} runs in all" if summary.same_runs > 1 else ""
        print(f"same run before: yes, {summary.same_run} ({summary.same_run_status}{times})")
