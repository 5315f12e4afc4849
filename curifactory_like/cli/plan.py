"""``experiment plan EXP``: what a run would compute, load, skip or overwrite, and why.

Maps the experiment (nothing runs, nothing is written) and prints every stage call with its
action and reason, the totals per action and an estimate of the run time from the durations
the registry recorded; ``--json`` prints the same as JSON, ``--against REF`` compares with an
earlier run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from . import EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_FAILED, _add_selection, selection_options


def register(sub: Any) -> None:
    """Add ``plan`` to the ``experiment`` sub-commands."""
    parser = sub.add_parser(
        "plan", help="explain what a run would compute, load or skip, and why (runs nothing)"
    )
    _add_selection(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--against", metavar="REF",
        help="compare with an earlier run (a reference as `experiment runs` shows it)",
    )
    parser.add_argument("--plain", action="store_true", help="no colours or styling")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Map the experiment, explain its plan, print it; exit 2 on bad input, 1 if mapping fails."""
    from ..errors import CurifactoryError
    from ..experiment import run_experiment
    from ..explain import explain_plan
    from .render import print_error

    try:
        dag, manager = run_experiment(
            args.experiment_name,
            **selection_options(args),
            log=True,
            log_debug=args.verbose,
            quiet=not args.verbose,
            map_only=True,
            run_string=shlex.join(["experiment", "plan", *sys.argv[2:]]),
        )
        if manager.status == "error" or dag is None:
            print_error(str(manager.error))
            return EXIT_RUN_FAILED
        explanation = explain_plan(manager, dag, against=args.against)
    except CurifactoryError as exc:
        if args.verbose:
            import traceback

            traceback.print_exc()
        print_error(exc.detailed())
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(explanation.to_json(), indent=2, default=str))
    else:
        from .plan_render import print_plan

        print_plan(explanation, plain=args.plain)
    return EXIT_OK
