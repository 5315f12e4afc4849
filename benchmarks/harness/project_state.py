"""The scratch project's outputs between runs: the trash that takes them instead of deleting
them, clean starts and warm snapshots, and what a run left behind (files it wrote, the
aggregate's ``best`` result, the report's size)."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

from .scenarios import SNAPSHOT_DIRS, STATE_DIRS


class Trash:
    """Where a repeat's outputs go instead of being deleted before the next repeat.

    This machine's root file system is ext4 without a journal, where allocating an inode skips,
    one by one, every inode of the block group freed in the last minute (five minutes while the
    inode table is dirty): ``recently_deleted`` in fs/ext4/ialloc.c, a check journaled ext4 does
    not make. Deleting one run's thousands of files right before the next run therefore makes
    every file the next run creates cost time proportional to the files just deleted, and
    penalises whoever creates more files. Moving the outputs aside (a rename, no inode freed)
    and deleting them once every timed run is over keeps one run's deletion out of the next
    one's timing, for every framework alike. ``--delete-between-repeats`` restores deletion.
    """

    folder: Path | None = None
    moved = 0

    @classmethod
    def discard(cls, path: Path) -> None:
        if cls.folder is not None:
            cls.folder.mkdir(parents=True, exist_ok=True)
            cls.moved += 1
            try:
                os.rename(path, cls.folder / f"{cls.moved}-{path.name}")
                return
            except OSError:
                pass  # another file system: delete it after all
        if path.is_symlink() or path.is_file():
            path.unlink()
        else:
            shutil.rmtree(path)

    @classmethod
    def empty(cls) -> None:
        if cls.folder is not None:
            shutil.rmtree(cls.folder, ignore_errors=True)


FLOOR_LAUNCHER = """
import os, runpy, shutil, sys
def _to_trash(path, *args, **kwargs):
    trash = os.environ["BENCH_TRASH"]
    os.makedirs(trash, exist_ok=True)
    os.rename(path, os.path.join(trash, f"floor-{os.getpid()}-{os.path.basename(path)}"))
shutil.rmtree = _to_trash
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
"""Runs ``floor.py`` unchanged except that the folder it deletes at its end is moved to the
trash instead (see ``Trash``), so its files, like the frameworks', are deleted after the last
timed run rather than right before the next one."""


def clean_state(project: Path) -> None:
    for d in STATE_DIRS:
        p = project / d
        if p.is_symlink() or p.exists():
            Trash.discard(p)


def take_snapshot(project: Path, snap: Path) -> None:
    if snap.exists():
        Trash.discard(snap)
    snap.mkdir(parents=True)
    for d in SNAPSHOT_DIRS:
        if (project / d).exists():
            shutil.copytree(project / d, snap / d, symlinks=True)


def restore_snapshot(project: Path, snap: Path) -> None:
    clean_state(project)
    for d in SNAPSHOT_DIRS:
        if (snap / d).exists():
            shutil.copytree(snap / d, project / d, symlinks=True)


def newest_mtime(root: Path) -> float:
    return max((p.stat().st_mtime for p in root.rglob("*") if p.is_file()), default=0.0)


def count_newer(root: Path, t: float) -> int:
    if not root.exists():
        return 0
    return sum(1 for p in root.rglob("*") if p.is_file() and p.stat().st_mtime > t)


def read_best(project: Path) -> tuple[dict | None, str | None]:
    """The aggregate's `best` JSON artifact from the cache (`*_compare_best.json`)."""
    cache = project / "data" / "cache"
    files = sorted(cache.rglob("*_compare_best.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        return None, f"no *_compare_best.json under {cache}"
    try:
        return json.loads(files[-1].read_text()), None
    except (OSError, ValueError) as e:
        return None, f"unreadable {files[-1]}: {e}"


def report_size(project: Path) -> dict | None:
    """Size of the newest run report (its index.html and its whole folder), in bytes."""
    reports = project / "reports"
    pages = [p for p in reports.glob("*/index.html") if p.parent.name != "_latest"]
    if not pages:
        return None
    page = max(pages, key=lambda p: p.stat().st_mtime)
    folder = sum(f.stat().st_size for f in page.parent.rglob("*") if f.is_file())
    return {"index_html": page.stat().st_size, "folder": folder}


REL_TOL = 1e-12


def best_equal(a: dict, b: dict) -> tuple[bool, str]:
    if a.get("best_name") != b.get("best_name"):
        return False, f"best_name {a.get('best_name')!r} != {b.get('best_name')!r}"
    for k in sorted(set(a) | set(b)):
        if k == "best_name":
            continue
        va, vb = a.get(k), b.get(k)
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            if not math.isclose(va, vb, rel_tol=REL_TOL, abs_tol=1e-300):
                return False, f"{k}: {va!r} != {vb!r}"
        elif va != vb:
            return False, f"{k}: {va!r} != {vb!r}"
    return True, ""
