"""``experiment export <ref> FILE.tar.gz`` and ``experiment import FILE.tar.gz``."""

from __future__ import annotations

import argparse

from . import EXIT_BAD_INPUT, EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``export`` and ``import`` commands."""
    export = sub.add_parser(
        "export", help="write a --store-full run folder to one .tar.gz",
        description="Write the run folder of a --store-full run (verified against its "
        "manifest) to one .tar.gz, to move it to another machine.",
    )
    export.add_argument("run", metavar="REF|FOLDER", help="run reference or run folder path")
    export.add_argument("archive", metavar="FILE.tar.gz", help="the archive to write")
    export.add_argument("-v", "--verbose", action="store_true", help="tracebacks with errors")
    export.set_defaults(handler=export_command)
    imported = sub.add_parser(
        "import", help="add a run exported with `experiment export` to this project",
        description="Extract a run archive (refusing unsafe members) into the runs folder, "
        "register the run (`experiment runs`) and add its report to the reports index.",
    )
    imported.add_argument("archive", metavar="FILE.tar.gz", help="the archive to import")
    imported.add_argument("-v", "--verbose", action="store_true", help="tracebacks with errors")
    imported.set_defaults(handler=import_command)


def _failed(exc: Exception, verbose: bool) -> int:
    from .render import print_error

    if verbose:
        import traceback

        traceback.print_exc()
    print_error(exc.detailed() if hasattr(exc, "detailed") else str(exc))
    return EXIT_BAD_INPUT


def export_command(args: argparse.Namespace) -> int:
    """Export a run; 0 ok, 2 unknown or damaged run, unwritable archive."""
    from ..errors import CurifactoryError
    from ..runstore.archive import export_run

    try:
        reference, path = export_run(args.run, args.archive)
    except (CurifactoryError, OSError) as exc:
        return _failed(exc, args.verbose)
    print(f"exported run {reference} to {path}")
    return EXIT_OK


def import_command(args: argparse.Namespace) -> int:
    """Import a run archive; 0 ok, 2 unusable, unsafe or already imported archive."""
    from ..errors import CurifactoryError
    from ..runstore.archive import import_run

    try:
        row = import_run(args.archive)
    except (CurifactoryError, OSError) as exc:
        return _failed(exc, args.verbose)
    note = ""
    if "original_run_number" in row:
        note = f" (run number {row['original_run_number']} was taken; registered as {row['run_number']})"
    print(f"imported run {row['reference']}{note}")
    return EXIT_OK
