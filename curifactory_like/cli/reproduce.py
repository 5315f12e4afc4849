"""``experiment reproduce <ref | run folder> [--audit]``."""

from __future__ import annotations

import argparse
import sys

from . import EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_FAILED


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``reproduce`` command."""
    parser = sub.add_parser(
        "reproduce",
        help="rerun a --store-full run from its run folder (read only), or --audit it",
        description="Rerun a --store-full run with its stored parameter sets, loading every "
        "artifact from its run folder (read only), and write a new report that links back to "
        "the original run. With --audit, re-execute every stage into a scratch cache and "
        "compare each artifact's checksum with the run's manifest.",
    )
    parser.add_argument("run", metavar="REF|FOLDER",
                        help="a run reference (see `experiment runs`) or a path to a run folder")
    parser.add_argument("--audit", action="store_true",
                        help="re-execute every stage and compare artifacts with the manifest; "
                        "exit 1 if a deterministic artifact differs")
    parser.add_argument("--from-param-files", action="store_true",
                        help="rebuild the parameter sets from the current parameter files "
                        "instead of unpickling the stored ones")
    parser.add_argument("--quiet", action="store_true", help="no console log of the run")
    parser.add_argument("-v", "--verbose", action="store_true", help="tracebacks with errors")
    parser.set_defaults(handler=reproduce_command)


def reproduce_command(args: argparse.Namespace) -> int:
    """Run the reproduction; 0 ok, 1 run failed or audit found a difference, 2 bad input."""
    import os

    from ..errors import CurifactoryError
    from ..runstore.reproduce import reproduce
    from .render import print_error

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        result = reproduce(
            args.run, audit=args.audit, from_param_files=args.from_param_files,
            quiet=args.quiet, say=say,
        )
    except CurifactoryError as exc:
        if args.verbose:
            import traceback

            traceback.print_exc()
        print_error(exc.detailed())
        return EXIT_BAD_INPUT
    manager = result.manager
    print(f"Reproduction {manager.get_reference_name()} of run {result.original}: "
          f"{manager.status}")
    executed = ", ".join(f"{c['stage']} ({c['record']})" for c in result.executed)
    print(f"  stage calls: {len(result.executed)} executed"
          + (f" [{executed}]" if executed and not args.audit else "")
          + f", {result.reused} loaded or skipped from the run folder")
    verified = f"  manifest: {result.verified} files verified"
    if result.folder_changed:
        verified += " before; the run folder CHANGED during the run (see the warnings)"
    elif result.verified_after is not None:
        verified += f" before, {result.verified_after} after the run (unchanged)"
    print(verified)
    print(f"  reportables: {result.reportables_expected - len(result.missing_reportables)} of "
          f"{result.reportables_expected} present"
          + (f"; missing: {', '.join(result.missing_reportables)}"
             if result.missing_reportables else ""))
    if result.audit is not None:
        print(f"\nAudit {result.audit.verdict}\n")
        print(result.audit.table())
    if manager.report_path:
        print(f"  report: {manager.report_path}")
    if manager.status != "complete":
        print_error(f"the reproduction failed: {manager.error}")
    return EXIT_RUN_FAILED if result.failed else EXIT_OK
