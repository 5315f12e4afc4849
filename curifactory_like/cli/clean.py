"""``experiment clean``, ``experiment pin`` and ``experiment unpin``: cache cleaning by run.

The decisions are made in :mod:`curifactory_like.cleaning`; this module wires the arguments
and prints what was (or, with ``--dry-run``, would be) removed.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def register(sub: Any) -> None:
    """Add the ``clean``, ``pin`` and ``unpin`` commands."""
    from ..cleaning import DEFAULT_KEEP_LAST

    clean = sub.add_parser(
        "clean",
        help="remove cache files no kept run uses",
        description="Remove cache files (artifacts, sidecars, reportables) that no kept run "
        "references. Kept: the newest N runs per experiment, every --store-full run, pinned "
        "runs; files a running experiment holds are never removed.",
    )
    clean.add_argument("--keep-last", type=int, default=DEFAULT_KEEP_LAST, metavar="N",
                       help=f"keep the files of the newest N runs per experiment "
                       f"(default {DEFAULT_KEEP_LAST})")
    clean.add_argument("--max-size", metavar="SIZE",
                       help="only remove (least recently used first) until the cache is at most "
                       "SIZE (e.g. 500M, 2G); may then also remove files of the newest runs")
    clean.add_argument("--dry-run", action="store_true",
                       help="print what would be removed, remove nothing")
    clean.add_argument("-c", "--cache", metavar="DIR",
                       help="clean DIR instead of the configured cache_path")
    clean.add_argument("-v", "--verbose", action="store_true",
                       help="also list the files kept and why; tracebacks with errors")
    clean.set_defaults(handler=clean_command)
    for name, text in (("pin", "keep a run's cache files when cleaning"),
                       ("unpin", "let cleaning remove a pinned run's files again")):
        parser = sub.add_parser(name, help=text)
        parser.add_argument("reference", metavar="REF", nargs="?" if name == "pin" else None,
                            help="run reference, EXP_N (e.g. regression_3), or a unique prefix"
                            + ("; without REF, list the pinned runs" if name == "pin" else ""))
        if name == "pin":
            parser.add_argument("--note", help="why the run is pinned")
        parser.add_argument("-v", "--verbose", action="store_true",
                            help="tracebacks with errors")
        parser.set_defaults(handler=pin_command if name == "pin" else unpin_command)


def _registry(config: dict[str, Any]) -> Any:
    from ..errors import CurifactoryError
    from ..store import RunStore

    path = os.path.join(str(config["manager_cache_path"]), "store.db")
    if not os.path.exists(path):
        raise CurifactoryError(
            f"no run registry at {path}: nothing records which runs use which cache files; "
            "run the command from the project folder (or check manager_cache_path in "
            "curifactory_config.json)"
        )
    return RunStore(config["manager_cache_path"])


def _guarded(args: argparse.Namespace, body: Any) -> int:
    from ..errors import CurifactoryError
    from .render import print_error

    try:
        return int(body())
    except CurifactoryError as exc:
        if getattr(args, "verbose", False):
            import traceback

            traceback.print_exc()
        print_error(exc.detailed())
        return EXIT_BAD_INPUT


def clean_command(args: argparse.Namespace) -> int:
    """``experiment clean``: plan, then remove (or list) cache entries."""

    def body() -> int:
        from .. import utils
        from ..cleaning import apply_clean, format_size, parse_size, plan_clean

        config = utils.get_configuration()
        max_size = parse_size(args.max_size) if args.max_size is not None else None
        cache_path = args.cache or str(config["cache_path"])
        with _registry(config) as store:
            plan = plan_clean(store, cache_path, keep_last=args.keep_last, max_size=max_size)
            if not args.dry_run:
                apply_clean(store, plan)
        verb = "would remove" if args.dry_run else "removed"
        for entry in plan.remove:
            print(f"{verb} {entry.path} ({format_size(entry.size)}; {entry.reason})")
        if args.verbose:
            for entry in plan.keep:
                print(f"kept {entry.path} ({format_size(entry.size)}; {entry.reason})")
        kept = {"protected": 0, "recent": 0, "leftover": 0}
        for entry in plan.keep:
            kind = "leftover" if entry.leftover is not None else entry.fate.value
            if kind in kept:
                kept[kind] += 1
        in_use = f", {kept['leftover']} temporary entries in use" if kept["leftover"] else ""
        freed = "would free" if args.dry_run else "freed"
        print(
            f"total: {verb} {len(plan.remove)} cache entr{'y' if len(plan.remove) == 1 else 'ies'}, "
            f"{freed} {format_size(plan.freed)} ({plan.freed} bytes); kept "
            f"{len(plan.keep)} ({kept['recent']} of the newest {plan.keep_last} runs per "
            f"experiment, {kept['protected']} pinned, --store-full or held by running runs"
            f"{in_use}); "
            f"cache {'would be' if args.dry_run else 'is now'} {format_size(plan.size_after)}"
        )
        for note in plan.notes:
            print(f"note: {note}")
        return EXIT_OK

    return _guarded(args, body)


def pin_command(args: argparse.Namespace) -> int:
    """``experiment pin REF``: record the pin in the registry."""

    def body() -> int:
        from .. import utils
        from ..cleaning import resolve_run

        with _registry(utils.get_configuration()) as store:
            if args.reference is None:
                pins = store.pinned_runs()
                for reference, pin in sorted(pins.items()):
                    note = f"  {pin['note']}" if pin["note"] else ""
                    print(f"{reference}  pinned {pin['pinned_at']}{note}")
                if not pins:
                    print("no pinned runs")
                return EXIT_OK
            reference = resolve_run(store, args.reference)
            added = store.pin_run(reference, args.note)
        print(f"pinned {reference}" if added else f"{reference} was already pinned")
        return EXIT_OK

    return _guarded(args, body)


def unpin_command(args: argparse.Namespace) -> int:
    """``experiment unpin REF``: remove the pin."""

    def body() -> int:
        from .. import utils
        from ..cleaning import resolve_run

        with _registry(utils.get_configuration()) as store:
            reference = resolve_run(store, args.reference)
            removed = store.unpin_run(reference)
        print(f"unpinned {reference}" if removed else f"{reference} was not pinned")
        return EXIT_OK

    return _guarded(args, body)
