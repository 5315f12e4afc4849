"""Cache cleaning that respects runs: decide which cache files go, then remove them.

The registry's ``artifacts`` table records every cache path each run computed, overwrote,
loaded or skipped (a skipped artifact stays reachable from the run through a lazy handle), so
"a run references a file" is read from there. Files are grouped by their *stage stem*
``[prefix]_[hash]_[stage]_``: an artifact, its ``_metadata.json`` sidecar, the stage's
``_reportables`` folder and files the stage wrote with ``record.get_path`` share it, so they
are kept or removed together.

Every cache entry (a file, or a directory named like an artifact) gets one fate:

======================  ===============================================================
protected               referenced by a pinned run, a ``--store-full`` run, or held by a
                        running run: never removed
kept (recent)           referenced by one of the newest ``keep_last`` runs of its
                        experiment: removed only when ``max_size`` asks for it
removable               referenced by no kept run (or by no run at all)
======================  ===============================================================

The sidecar index (``.sidecar_index/``, parsed sidecars kept for the next run) is not a cache
entry: it is left out of the cache's size and removed with the first entry that goes, since the
next run rebuilds it.

Without ``max_size`` every removable entry is removed. With ``max_size`` entries are removed,
least recently used first, only while the cache is larger than ``max_size``: first the
removable ones, then the recent-kept ones; protected entries stay even if the cache remains
too large (the result says so). "Recently used" is the newer of the entry's modification time
and the start of the newest run that references it.

A run *holds* files while it runs: its status is ``incomplete`` (or ``LIVE``) and its process
(``pid`` and ``hostname`` in the run info) is alive. It holds every entry whose name carries
one of its parameter-set hashes or an aggregate hash made only of them, and every entry
modified since it started (it has not recorded its artifacts yet). A run on another host
cannot be checked and counts as running; a run without a recorded ``pid`` (older versions)
counts as finished. Holds are checked again just before each removal.

Only entries whose name carries a hash (``_<hex>`` then ``_``, ``.`` or the end) are removed,
and the leftovers of killed runs (``leftovers.py``: temporary files of atomic writes and
``--parallel`` working folders, once their writer is gone and they have been quiet for a while).
Other files and dot entries are left alone but count towards the cache size.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import shutil
import socket
from datetime import datetime
from typing import Any

from .caching.sidecars import INDEX_FOLDER
from .errors import CurifactoryError, RunReferenceError
from .leftovers import Leftover, identify, keep_reason, process_alive
from .store import TIMESTAMP_FORMAT, RunStore

__all__ = [
    "DEFAULT_KEEP_LAST",
    "CacheEntry",
    "CleanPlan",
    "Fate",
    "apply_clean",
    "format_size",
    "parse_size",
    "plan_clean",
    "resolve_run",
    "running_runs",
]

DEFAULT_KEEP_LAST = 5
"""Runs per experiment whose files ``experiment clean`` keeps by default."""

_HASH_TOKEN = re.compile(r"_([0-9a-f]{30,40})(?=[_.]|$)")
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_RUNNING_STATUSES = ("incomplete", "LIVE")


class Fate(str, enum.Enum):
    """What cleaning does with one cache entry."""

    PROTECTED = "protected"  # pinned, --store-full or running run: never removed
    RECENT = "recent"  # newest runs of an experiment: removed only to meet --max-size
    REMOVABLE = "removable"  # no kept run references it


@dataclasses.dataclass
class CacheEntry:
    """One file, or one artifact directory, in the cache."""

    path: str
    size: int
    modified: float
    """Newest modification time (seconds since the epoch) of the file or any file inside."""
    references: list[str] = dataclasses.field(default_factory=list)
    """Runs whose recorded artifacts share this entry's stage stem, oldest first."""
    last_used: float = 0.0
    group: str = ""
    """Entries of one group (a stage stem) are removed together under ``--max-size``."""
    fate: Fate = Fate.REMOVABLE
    reason: str = ""
    leftover: Leftover | None = None
    """Set for what a killed run left behind (see ``leftovers.py``)."""

    @property
    def hash_token(self) -> str | None:
        """The parameter-set (or aggregate) hash in the entry's name."""
        match = _HASH_TOKEN.search(os.path.basename(self.path))
        return match.group(1) if match else None


@dataclasses.dataclass
class CleanPlan:
    """The entries to remove (in removal order) and every entry that stays, with reasons."""

    cache_path: str
    keep_last: int
    max_size: int | None
    total_size: int
    remove: list[CacheEntry]
    keep: list[CacheEntry]
    other_size: int
    """Bytes of files cleaning never touches (no hash in the name, dot entries)."""
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(entry.size for entry in self.remove)

    @property
    def size_after(self) -> int:
        return self.total_size - self.freed


def parse_size(text: str) -> int:
    """``"500M"`` -> bytes. Units K, M, G, T are powers of 1024 (``KB``/``KiB`` alike)."""
    match = _SIZE.match(str(text))
    if match is None:
        raise CurifactoryError(
            f"--max-size {text!r} is not a size; write a number of bytes with an optional unit "
            "K, M, G or T (powers of 1024), e.g. --max-size 500M or --max-size 2G"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def format_size(size: float) -> str:
    """Bytes as ``512 B``, ``1.5 KiB``, ``3.2 MiB``, ..."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


def resolve_run(store: RunStore, ref: str) -> str:
    """The reference of the run ``ref`` names: a reference, ``EXP_N``, or a unique prefix."""
    runs = store.list_runs()
    references = [str(run["reference"]) for run in runs]
    if ref in references:
        return ref
    by_number = [
        str(run["reference"])
        for run in runs
        if f"{run['experiment_name']}_{run['run_number']}" == ref
    ]
    matches = by_number or [r for r in references if r.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise RunReferenceError(
            f"run reference {ref!r} matches {len(matches)} runs ({', '.join(matches[:5])}"
            f"{' ...' if len(matches) > 5 else ''}); give the full reference"
        )
    raise RunReferenceError(
        f"no run {ref!r} in the registry {store.path}; `experiment runs` lists the references "
        "(EXP_N, e.g. tiny_3, also works)"
    )


def run_started(run: dict[str, Any]) -> float:
    """The start of a run in seconds since the epoch (0 if unknown)."""
    try:
        return datetime.strptime(str(run.get("timestamp")), TIMESTAMP_FORMAT).timestamp()
    except ValueError:
        return 0.0


def is_running(run: dict[str, Any], hostname: str | None = None) -> bool:
    """Whether a registered run is running now (see the module docstring)."""
    if run.get("status") not in _RUNNING_STATUSES or run.get("pid") is None:
        return False
    if run.get("hostname") not in (None, hostname or socket.gethostname()):
        return True  # cannot look at another machine's processes: assume it still runs
    return process_alive(int(run["pid"]))


def running_runs(store: RunStore) -> list[dict[str, Any]]:
    """The registered runs that are running now."""
    hostname = socket.gethostname()
    return [run for run in store.list_runs() if is_running(run, hostname)]


def _run_hashes(run: dict[str, Any]) -> set[str]:
    hashes: set[str] = set()
    for pairs in (run.get("params") or {}).values():
        for pair in pairs or []:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                hashes.add(str(pair[1]))
    return hashes


class _Holds:
    """Which entries running runs hold (hashes, aggregates of them, files written since)."""

    def __init__(self, store: RunStore, runs: list[dict[str, Any]]) -> None:
        self.store = store
        self.runs = [(run, _run_hashes(run), run_started(run)) for run in runs]
        self._combos: dict[str, list[str] | None] = {}

    def _members(self, token: str) -> list[str] | None:
        if token not in self._combos:
            combo = self.store.get_combo_hash(token)
            self._combos[token] = None if combo is None else [str(m) for m in combo["members"]]
        return self._combos[token]

    def holder(self, entry: CacheEntry) -> str | None:
        """The reference of a running run holding ``entry``, or None."""
        token = entry.hash_token
        for run, hashes, started in self.runs:
            if entry.modified >= started - 1:
                return str(run["reference"])
            if token is None:
                continue
            members = self._members(token) if token not in hashes else None
            if token in hashes or (
                members and all(m in hashes or m == "None" for m in members)
            ):
                return str(run["reference"])
        return None


def _stem(path: str, record_hash: str | None, stage: str | None) -> str:
    """``[prefix]_[hash]_[stage]_`` of a recorded artifact path (else its name sans extension)."""
    name = os.path.basename(path)
    marker = f"_{record_hash}_{stage}_"
    index = name.find(marker) if record_hash and stage else -1
    if index >= 0:
        return name[: index + len(marker)]
    return os.path.splitext(name)[0]


def _scan(directory: str) -> tuple[list[CacheEntry], int]:
    """Cache entries below ``directory``, and the bytes of files cleaning never touches."""
    entries: list[CacheEntry] = []
    other = 0
    try:
        items = list(os.scandir(directory))
    except FileNotFoundError:
        return entries, 0
    for item in items:
        if item.name == INDEX_FOLDER:  # rebuilt by the next run; dropped by apply_clean
            continue
        if item.name.startswith("."):
            leftover = identify(item.name, item.is_dir(follow_symlinks=False))
            size, modified = _size_and_mtime(item.path)
            if leftover is None:
                other += size
            else:
                entries.append(CacheEntry(item.path, size, modified, leftover=leftover))
        elif _HASH_TOKEN.search(item.name):
            size, modified = _size_and_mtime(item.path)
            entries.append(CacheEntry(item.path, size, modified))
        elif item.is_dir(follow_symlinks=False):
            inner, inner_other = _scan(item.path)
            entries.extend(inner)
            other += inner_other
        else:
            other += _size_and_mtime(item.path)[0]
    return entries, other


def _size_and_mtime(path: str) -> tuple[int, float]:
    try:
        stat = os.lstat(path)
    except OSError:
        return 0, 0.0
    if not os.path.isdir(path) or os.path.islink(path):
        return stat.st_size, stat.st_mtime
    size, modified = 0, stat.st_mtime
    for root, _, files in os.walk(path):
        for name in files:
            try:
                inner = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            size += inner.st_size
            modified = max(modified, inner.st_mtime)
    return size, modified


def _matching(name: str, stems: dict[str, set[str]]) -> tuple[set[str], str]:
    """References of every stem that ``name`` starts with, and the group ``name`` belongs to.

    A stage stem ends with ``_``; a fallback stem (a file name without its extension) is
    followed by ``.`` or ``_`` (``_metadata.json``) or ends the name: only those cuts are tried.
    The group is the longest matching stem, else the name up to its hash (``[prefix]_[hash]``).
    """
    found: set[str] = set()
    group = ""
    for cut in [
        *(end + 1 for end, char in enumerate(name) if char == "_"),
        *(end for end, char in enumerate(name) if char in "_."),
        len(name),
    ]:
        references = stems.get(name[:cut])
        if references:
            found.update(references)
            group = max(group, name[:cut], key=len)
    if not group:
        match = _HASH_TOKEN.search(name)
        group = name[: match.end()] if match else name
    return found, group


def plan_clean(
    store: RunStore,
    cache_path: str,
    keep_last: int = DEFAULT_KEEP_LAST,
    max_size: int | None = None,
) -> CleanPlan:
    """Decide the fate of every cache entry (nothing is removed; see :func:`apply_clean`)."""
    if keep_last < 0:
        raise CurifactoryError(f"--keep-last {keep_last}: give a number of runs >= 0")
    runs = store.list_runs()
    by_reference = {str(run["reference"]): run for run in runs}
    order = {reference: index for index, reference in enumerate(by_reference)}
    pinned = store.pinned_runs()
    recent: set[str] = set()
    experiments: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        experiments.setdefault(str(run["experiment_name"]), []).append(run)
    for experiment_runs in experiments.values():
        newest = sorted(experiment_runs, key=lambda r: int(r["run_number"]), reverse=True)
        recent.update(str(run["reference"]) for run in newest[:keep_last])
    holds = _Holds(store, [run for run in runs if is_running(run)])

    stems: dict[str, set[str]] = {}
    for use in store.artifact_uses():
        stem = _stem(str(use["path"]), use["record_hash"], use["stage"])
        stems.setdefault(stem, set()).add(str(use["reference"]))

    started = {reference: run_started(run) for reference, run in by_reference.items()}
    entries, other = _scan(cache_path)
    for entry in entries:
        if entry.leftover is not None:
            entry.group, entry.last_used = entry.path, entry.modified
            _decide_leftover(entry, by_reference)
            continue
        references, entry.group = _matching(os.path.basename(entry.path), stems)
        entry.references = sorted(references, key=lambda r: order.get(r, -1))
        entry.last_used = max([entry.modified, *(started.get(r, 0.0) for r in references)])
        _decide(entry, by_reference, pinned, recent, holds, keep_last)

    total = other + sum(entry.size for entry in entries)
    remove: list[CacheEntry] = []
    notes: list[str] = []
    if max_size is None:
        remove = sorted(
            (e for e in entries if e.fate is Fate.REMOVABLE), key=lambda e: (e.last_used, e.path)
        )
    else:
        size = total
        for group in [*_groups(entries, Fate.REMOVABLE), *_groups(entries, Fate.RECENT)]:
            if size <= max_size:
                break
            remove.extend(group)
            size -= sum(entry.size for entry in group)
        if size > max_size:
            notes.append(
                f"the cache stays at {format_size(size)}, above --max-size "
                f"{format_size(max_size)}: the rest is used by pinned, --store-full or running "
                "runs, or is not a cache artifact; unpin runs to go further"
            )
    chosen = {id(entry) for entry in remove}
    keep = [entry for entry in entries if id(entry) not in chosen]
    elsewhere = [
        run for run in runs if is_running(run) and run.get("hostname") != socket.gethostname()
    ]
    for run in elsewhere:
        notes.append(
            f"run {run['reference']} is registered as running on host {run.get('hostname')}, "
            "which cannot be checked from here: its files are kept"
        )
    return CleanPlan(
        cache_path=cache_path,
        keep_last=keep_last,
        max_size=max_size,
        total_size=total,
        remove=remove,
        keep=sorted(keep, key=lambda e: e.path),
        other_size=other,
        notes=notes,
    )


def _groups(entries: list[CacheEntry], fate: Fate) -> list[list[CacheEntry]]:
    """Entries of one fate grouped by stage stem, least recently used group first."""
    groups: dict[str, list[CacheEntry]] = {}
    for entry in entries:
        if entry.fate is fate:
            groups.setdefault(entry.group, []).append(entry)
    ordered = sorted(
        groups.values(), key=lambda g: (max(e.last_used for e in g), min(e.path for e in g))
    )
    return [sorted(group, key=lambda e: e.path) for group in ordered]


def _decide(
    entry: CacheEntry,
    runs: dict[str, dict[str, Any]],
    pinned: dict[str, Any],
    recent: set[str],
    holds: _Holds,
    keep_last: int,
) -> None:
    holder = holds.holder(entry)
    if holder is not None:
        entry.fate, entry.reason = Fate.PROTECTED, f"held by running run {holder}"
        return
    for reference in reversed(entry.references):
        if reference in pinned:
            entry.fate, entry.reason = Fate.PROTECTED, f"used by pinned run {reference}"
            return
    for reference in reversed(entry.references):
        if (runs.get(reference) or {}).get("full_store"):
            entry.fate, entry.reason = Fate.PROTECTED, f"used by --store-full run {reference}"
            return
    for reference in reversed(entry.references):
        if reference in recent:
            entry.fate = Fate.RECENT
            entry.reason = f"used by {reference}, one of the newest {keep_last} runs"
            return
    entry.fate = Fate.REMOVABLE
    entry.reason = (
        f"last used by {entry.references[-1]}, not a kept run"
        if entry.references
        else "no run in the registry uses it"
    )


def _decide_leftover(entry: CacheEntry, runs: dict[str, dict[str, Any]]) -> None:
    assert entry.leftover is not None
    reason = keep_reason(entry.leftover, entry.modified, lambda r: is_running(runs.get(r) or {}))
    entry.fate = Fate.REMOVABLE if reason is None else Fate.PROTECTED
    entry.reason = reason or f"{entry.leftover.kind} of a killed run"


def apply_clean(store: RunStore, plan: CleanPlan) -> list[CacheEntry]:
    """Remove the planned entries, re-checking running runs first; return what was removed."""
    holds = _Holds(store, running_runs(store))
    removed: list[CacheEntry] = []
    for entry in plan.remove:
        current = _size_and_mtime(entry.path)
        if not os.path.lexists(entry.path):
            continue
        entry.modified = max(entry.modified, current[1])
        if entry.leftover is not None:  # its writer may have started again meanwhile
            _decide_leftover(entry, {str(run["reference"]): run for run, _, _ in holds.runs})
            if entry.fate is not Fate.REMOVABLE:
                plan.keep.append(entry)
                continue
        holder = holds.holder(entry)
        if holder is not None:  # a run started since the plan was made
            entry.fate, entry.reason = Fate.PROTECTED, f"held by running run {holder}"
            plan.keep.append(entry)
            continue
        _remove(entry.path)
        removed.append(entry)
    if any(entry.leftover is None for entry in removed):  # it describes sidecars now gone
        shutil.rmtree(os.path.join(plan.cache_path, INDEX_FOLDER), ignore_errors=True)
    plan.remove = removed
    return removed


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
