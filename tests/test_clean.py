"""``experiment clean``, ``pin`` and ``unpin``: cache cleaning that respects runs.

Runs are real ``experiment`` subprocesses on the tiny project (``tests/_projects.py``), with
the real SQLite registry; a running experiment is a real process blocked inside a stage.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from _projects import (
    GOLDEN_HASH_A,
    cache_files,
    command_env,
    copy_project,
    experiment_command,
    output,
    registry_runs,
    run_cli,
    write_source,
    write_tiny,
)

from curifactory_like.cleaning import parse_size
from curifactory_like.store import SCHEMA_VERSION, RunStore

SLOW_EXPERIMENT = '''\
"""make, then a stage that waits for the file 'release' (so the run stays running)."""

import os
import time

import curifactory_like as cf
from curifactory_like.caching import JsonCacher
from experiments.tiny import make


@cf.stage(inputs=["x"], outputs=["h"], cachers=[JsonCacher])
def hold(record, x):
    open("started", "w").close()
    deadline = time.time() + 60
    while not os.path.exists("release") and time.time() < deadline:
        time.sleep(0.05)
    return x


def run(param_sets, manager):
    for param_set in param_sets:
        hold(make(cf.Record(manager, param_set)))
'''


def _ok(root: Path, *args: str) -> str:
    result = run_cli(root, *args)
    assert result.returncode == 0, output(result)
    return output(result)


def _hashes(root: Path) -> dict[str, str]:
    """Parameter set name -> hash, from the runs in the registry."""
    found: dict[str, str] = {}
    for run in registry_runs(root):
        for pairs in run["info"]["params"].values():
            found.update({name: digest for name, digest in pairs})
    return found


def _files_of(root: Path, *names: str) -> list[str]:
    hashes = _hashes(root)
    return [f for f in cache_files(root / "data" / "cache") if any(hashes[n] in f for n in names)]


@pytest.fixture(scope="module")
def three_runs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run 1: sets a, b, c. Run 2: d, e. Run 3: a again, loading make and double from run 1."""
    root = write_tiny(tmp_path_factory.mktemp("template") / "proj")
    _ok(root, "run", "tiny", "-p", "tiny", "--quiet")
    _ok(root, "run", "tiny", "-p", "more", "--quiet")
    _ok(root, "run", "tiny", "-p", "tiny", "--names", "a", "--overwrite-stage", "square",
        "--quiet")
    return root


@pytest.fixture
def three_runs(three_runs_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the three-run project (registry paths are relative to the project)."""
    root = tmp_path / "proj"
    copy_project(three_runs_template, root)
    return root


def test_clean_keeps_every_file_of_kept_runs_and_removes_the_rest(three_runs: Path) -> None:
    """--keep-last 1 keeps run 3's artifacts (computed, loaded and skipped) with their sidecars."""
    root = three_runs
    cache = root / "data" / "cache"
    kept = _files_of(root, "a")
    assert len(kept) == 6 and all(GOLDEN_HASH_A in f for f in kept)  # 3 artifacts + 3 sidecars
    removed = _files_of(root, "b", "c", "d", "e")
    assert len(removed) == 24
    text = _ok(root, "clean", "--keep-last", "1")
    assert cache_files(cache) == kept
    for name in removed:
        assert f"removed data/cache/{name} (" in text
    assert "removed 24 cache entries" in text
    freed = int(re.search(r"freed .* \((\d+) bytes\)", text).group(1))
    assert freed > 0


def test_loaded_artifacts_are_recorded_for_the_run_that_loaded_them(three_runs: Path) -> None:
    """Run 3 loaded double's output and skipped make's: both are recorded as its artifacts."""
    with sqlite3.connect(three_runs / "data" / "store.db") as conn:
        rows = conn.execute(
            "SELECT stage, action FROM artifacts WHERE reference LIKE 'tiny_3_%' ORDER BY id"
        ).fetchall()
    assert rows == [("make", "skipped"), ("double", "loaded"), ("square", "computed")]


def test_dry_run_removes_nothing_and_lists_what_clean_removes(three_runs: Path) -> None:
    """--dry-run prints 'would remove' for exactly the entries a real clean then removes."""
    cache = three_runs / "data" / "cache"
    before = cache_files(cache)
    dry = _ok(three_runs, "clean", "--keep-last", "1", "--dry-run")
    assert cache_files(cache) == before
    would = sorted(re.findall(r"^would remove (\S+) ", dry, re.MULTILINE))
    real = _ok(three_runs, "clean", "--keep-last", "1")
    assert sorted(re.findall(r"^removed (\S+) ", real, re.MULTILINE)) == would
    assert len(would) == 24


def test_default_keeps_the_newest_five_runs(three_runs: Path) -> None:
    """Without --keep-last, three runs are all kept and nothing is removed."""
    before = cache_files(three_runs / "data" / "cache")
    assert "removed 0 cache entries" in _ok(three_runs, "clean")
    assert cache_files(three_runs / "data" / "cache") == before


def test_pinned_runs_keep_their_files_until_unpinned(three_runs: Path) -> None:
    """A pinned run (named EXP_N) keeps its files at --keep-last 0; unpinning releases them."""
    root = three_runs
    assert "pinned tiny_2_" in _ok(root, "pin", "tiny_2", "--note", "paper figure")
    assert "already pinned" in _ok(root, "pin", "tiny_2")
    listed = _ok(root, "pin")
    assert re.search(r"^tiny_2_\S+  pinned \S+  paper figure$", listed, re.MULTILINE), listed
    d_and_e = _files_of(root, "d", "e")
    _ok(root, "clean", "--keep-last", "0")
    assert cache_files(root / "data" / "cache") == sorted(d_and_e)
    assert "unpinned tiny_2_" in _ok(root, "unpin", "tiny_2")
    assert "no pinned runs" in _ok(root, "pin")
    assert "was not pinned" in _ok(root, "unpin", "tiny_2")
    _ok(root, "clean", "--keep-last", "0")
    assert cache_files(root / "data" / "cache") == []


def test_store_full_runs_keep_their_files(tmp_path: Path) -> None:
    """Every file a --store-full run used survives --keep-last 0."""
    root = write_tiny(tmp_path / "proj")
    _ok(root, "run", "tiny", "-p", "tiny", "--names", "a", "--store-full", "--quiet")
    _ok(root, "run", "tiny", "-p", "more", "--quiet")
    full = _files_of(root, "a")
    text = _ok(root, "clean", "--keep-last", "0", "-v")
    assert cache_files(root / "data" / "cache") == sorted(full)
    assert "used by --store-full run tiny_1_" in text


def test_unknown_references_and_missing_registry_exit_2(tmp_path: Path) -> None:
    """pin of an unknown run, a bad --max-size, and a project without registry exit 2."""
    root = write_tiny(tmp_path / "proj")
    result = run_cli(root, "clean")
    assert result.returncode == 2 and "no run registry" in output(result)
    _ok(root, "run", "tiny", "-p", "tiny", "--names", "a", "--quiet")
    result = run_cli(root, "pin", "nope_1")
    assert result.returncode == 2 and "no run 'nope_1'" in output(result)
    result = run_cli(root, "clean", "--max-size", "lots")
    assert result.returncode == 2 and "is not a size" in output(result)
    assert "Traceback" not in output(result)


def test_max_size_removes_least_recently_used_first_and_stops(three_runs: Path) -> None:
    """--max-size removes the oldest unreferenced entries only until the cache fits."""
    root = three_runs
    cache = root / "data" / "cache"
    sizes = {f: (cache / f).stat().st_size for f in cache_files(cache)}
    run1_only = _files_of(root, "b", "c")  # used by run 1 only, the oldest
    budget = sum(sizes.values()) - sum(sizes[f] for f in run1_only) // 2
    text = _ok(root, "clean", "--keep-last", "1", "--max-size", str(budget))
    removed = re.findall(r"^removed data/cache/(\S+) ", text, re.MULTILINE)
    assert removed and set(removed) <= set(run1_only)
    assert len(removed) < len(run1_only)
    assert sum((cache / f).stat().st_size for f in cache_files(cache)) <= budget
    remaining = cache_files(cache)
    sidecars = {f for f in remaining if f.endswith("_metadata.json")}
    artifacts = set(remaining) - sidecars
    assert {f.replace("_metadata.json", ".json") for f in sidecars} == artifacts  # in pairs


def test_max_size_may_remove_recent_runs_files_but_never_pinned(three_runs: Path) -> None:
    """--max-size 0 also removes files of the newest runs, never a pinned run's, and says so."""
    root = three_runs
    _ok(root, "pin", "tiny_2")
    text = _ok(root, "clean", "--max-size", "0")
    assert cache_files(root / "data" / "cache") == sorted(_files_of(root, "d", "e"))
    assert "note: the cache stays at" in text


def test_files_a_running_experiment_holds_are_never_removed(tmp_path: Path) -> None:
    """While a run is blocked in a stage, clean keeps the files it loads and writes."""
    root = write_tiny(tmp_path / "proj")
    write_source(root, "experiments/slow.py", SLOW_EXPERIMENT)
    (root / "release").touch()
    _ok(root, "run", "slow", "-p", "tiny", "--names", "a", "--quiet")
    _ok(root, "run", "slow", "-p", "tiny", "--names", "b", "--quiet")
    (root / "release").unlink()
    (root / "started").unlink()
    hour_ago = time.time() - 3600  # files written well before the run starts (the mtime rule)
    for name in cache_files(root / "data" / "cache"):
        os.utime(root / "data" / "cache" / name, (hour_ago, hour_ago))
    log = tmp_path / "running.log"
    with log.open("w") as sink, subprocess.Popen(
        [*experiment_command(), "run", "slow", "-p", "tiny", "--names", "a",
         "--overwrite-stage", "hold", "--quiet"],
        cwd=root, env=command_env(), stdout=sink, stderr=subprocess.STDOUT,
    ) as running:
        try:
            deadline = time.time() + 60
            while not (root / "started").exists():
                assert running.poll() is None and time.time() < deadline, log.read_text()
                time.sleep(0.05)
            fresh = root / "data" / "cache" / f"slow_{'f' * 32}_other_w.json"
            fresh.write_text("1")  # written while the run runs, not recorded by any run yet
            held = _files_of(root, "a")
            text = _ok(root, "clean", "--keep-last", "0")
            remaining = cache_files(root / "data" / "cache")
            assert set(held) | {fresh.name} <= set(remaining)
            assert not set(_files_of(root, "b")) & set(remaining)
            assert "held by running run slow_3_" not in text  # kept entries are not listed...
            verbose = _ok(root, "clean", "--keep-last", "0", "--dry-run", "-v")
            assert "held by running run slow_3_" in verbose  # ...unless asked for
        finally:
            (root / "release").touch()
            assert running.wait(timeout=60) == 0, log.read_text()
    assert "removed 0 cache entries" not in _ok(root, "clean", "--keep-last", "0")
    assert cache_files(root / "data" / "cache") == []


def test_files_without_a_hash_are_left_alone(three_runs: Path) -> None:
    """A file that is not a cache artifact (no hash in its name) is never removed."""
    cache = three_runs / "data" / "cache"
    (cache / "README.txt").write_text("mine")
    _ok(three_runs, "clean", "--keep-last", "0")
    assert cache_files(cache) == ["README.txt"]


def test_artifact_directories_and_subdirectories_are_cleaned(tmp_path: Path) -> None:
    """A stage's reportables folder goes with its artifacts; a cacher subdir is searched."""
    root = write_tiny(tmp_path / "proj")
    write_source(
        root,
        "experiments/rep.py",
        '''
        import curifactory_like as cf
        from curifactory_like.caching import JsonCacher
        from curifactory_like.reporting import JsonReporter

        @cf.stage(outputs=["x"], cachers=[JsonCacher(subdir="sub")])
        def make(record):
            record.report(JsonReporter({"n": record.params.n}))
            return record.params.n

        def run(param_sets, manager):
            for param_set in param_sets:
                make(cf.Record(manager, param_set))
        ''',
    )
    _ok(root, "run", "rep", "-p", "tiny", "--quiet")
    _ok(root, "run", "rep", "-p", "tiny", "--names", "a", "--quiet")
    cache = root / "data" / "cache"
    folders = sorted(p.name for p in cache.iterdir() if p.is_dir() and p.name != "sub" and not p.name.startswith("."))
    assert len(folders) == 3 and all(f.endswith("_make_reportables") for f in folders)
    assert (cache / ".sidecar_index").is_dir()
    text = _ok(root, "clean", "--keep-last", "1")
    assert not (cache / ".sidecar_index").exists()  # it described removed sidecars
    assert sorted(p.name for p in cache.iterdir() if p.is_dir() and p.name != "sub" and not p.name.startswith(".")) == [
        f for f in folders if GOLDEN_HASH_A in f
    ]
    assert text.count("_make_reportables (") == 2
    remaining = sorted(p.name for p in (cache / "sub").iterdir())
    assert remaining and all(_hashes(root)["a"] in name for name in remaining)


def test_parse_size_units() -> None:
    """Sizes are bytes with optional K, M, G, T (powers of 1024, B/iB suffixes alike)."""
    assert parse_size("123") == 123
    assert parse_size("2K") == parse_size("2KB") == parse_size("2kib") == 2048
    assert parse_size("1.5M") == 1536 * 1024
    assert parse_size("1G") == 1024**3


def test_a_version_2_registry_is_migrated_with_its_runs(tmp_path: Path) -> None:
    """Opening a schema-2 registry adds the pins table and keeps the existing runs."""
    from curifactory_like.store import schema

    folder = tmp_path / "data"
    folder.mkdir()
    conn = sqlite3.connect(folder / "store.db")
    for script in (schema.SCHEMA_V1, schema.SCHEMA_V2):
        conn.executescript(script)
    conn.execute(
        "INSERT INTO runs (reference, experiment_name, run_number, timestamp, status, info)"
        " VALUES ('x_1_t', 'x', 1, 't', 'complete', '{}')"
    )
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with RunStore(folder) as store:
        assert store.pin_run("x_1_t", "keep") is True
        assert store.pinned_runs()["x_1_t"]["note"] == "keep"
        assert store.unpin_run("x_1_t") is True and store.pinned_runs() == {}
    with sqlite3.connect(folder / "store.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3


def test_a_running_run_holds_aggregates_made_only_of_its_sets(tmp_path: Path) -> None:
    """An aggregate over the running run's sets is held; files of other sets are not."""
    import socket
    from datetime import datetime, timedelta

    from curifactory_like.cleaning import Fate, plan_clean

    root = write_tiny(tmp_path / "proj")
    write_source(
        root,
        "experiments/agg.py",
        '''
        import curifactory_like as cf
        from curifactory_like.caching import JsonCacher
        from experiments.tiny import make

        @cf.aggregate(inputs=["x"], outputs=["total"], cachers=[JsonCacher])
        def total(record, records, x):
            return sum(x.values())

        def run(param_sets, manager):
            records = [make(cf.Record(manager, p)) for p in param_sets]
            total(cf.Record(manager, None), records[:2])
            total(cf.Record(manager, None), records[1:])
        ''',
    )
    _ok(root, "run", "agg", "-p", "tiny", "--quiet")
    cache = root / "data" / "cache"
    two_days_ago = time.time() - 2 * 86400
    for name in cache_files(cache):
        os.utime(cache / name, (two_days_ago, two_days_ago))
    hashes = _hashes(root)
    with RunStore(root / "data") as store:
        store.start_run(
            "agg",
            datetime.now() - timedelta(days=1),
            {"pid": os.getpid(), "hostname": socket.gethostname(),
             "params": {"tiny": [["a", hashes["a"]], ["b", hashes["b"]]]}},
        )
        plan = plan_clean(store, str(cache), keep_last=0)
    fates = {os.path.basename(e.path): e for e in [*plan.keep, *plan.remove]}
    totals = sorted(n for n in fates if "_total_total" in n and not n.endswith("_metadata.json"))
    assert len(totals) == 2
    held = [n for n in totals if fates[n].fate is Fate.PROTECTED]
    assert len(held) == 1 and "held by running run agg_2_" in fates[held[0]].reason
    assert {os.path.basename(e.path) for e in plan.remove} >= {
        n for n in fates if hashes["c"] in n
    }
    assert all(fates[n].fate is Fate.PROTECTED for n in fates if hashes["a"] in n)


def test_path_override_artifacts_are_matched_by_their_file_name(tmp_path: Path) -> None:
    """Files of a path_override cacher (and their sidecars) follow the runs that used them."""
    root = write_tiny(tmp_path / "proj")
    write_source(
        root,
        "experiments/over.py",
        '''
        import curifactory_like as cf
        from curifactory_like.caching import JsonCacher

        @cf.stage(outputs=["x"],
                  cachers=[JsonCacher(path_override="{cache}/exports/{params.name}_{hash}.json")])
        def make(record):
            return record.params.n

        def run(param_sets, manager):
            for param_set in param_sets:
                make(cf.Record(manager, param_set))
        ''',
    )
    _ok(root, "run", "over", "-p", "tiny", "--quiet")
    _ok(root, "run", "over", "-p", "tiny", "--names", "b", "--quiet")
    exports = root / "data" / "cache" / "exports"
    assert len(cache_files(exports)) == 6
    _ok(root, "clean", "--keep-last", "1")
    b_hash = _hashes(root)["b"]
    assert cache_files(exports) == [f"b_{b_hash}.json", f"b_{b_hash}_metadata.json"]


def test_leftovers_of_killed_runs_are_removed_once_their_writer_is_gone(three_runs: Path) -> None:
    """A killed write's temporary file and a killed --parallel run's working folder go; a live
    writer's, a recently changed one and other dot entries stay; artifacts are untouched."""
    cache = three_runs / "data" / "cache"
    finished = subprocess.Popen(["true"])  # noqa: S603, S607 - a process that has exited
    finished.wait()
    dead_pid = finished.pid
    hour_ago = time.time() - 3600
    first_run = registry_runs(three_runs)[0]["reference"]

    def leftover(name: str, folder: bool = False, old: bool = True) -> Path:
        path = cache / name
        if folder:
            path.mkdir()
            (path / "0_make_x.pkl").write_bytes(b"carried")
        else:
            path.write_text("half a fil")
        for changed in [*path.glob("*"), path] if old else []:
            os.utime(changed, (hour_ago, hour_ago))
        return path

    killed_write = leftover(f".tiny_{GOLDEN_HASH_A}_make_x.json.{dead_pid}.0123456789ab.tmp.json")
    killed_folder = leftover(f".{first_run}-k1ll3d_x", folder=True)
    live_write = leftover(f".tiny_{GOLDEN_HASH_A}_make_x.json.{os.getpid()}.0123456789ab.tmp.json")
    fresh_write = leftover(f".tiny_{GOLDEN_HASH_A}_double_y.json.{dead_pid}.ba9876543210.tmp.json",
                           old=False)
    scratch = leftover(".scratch", folder=True)
    artifacts = cache_files(cache)

    dry = _ok(three_runs, "clean", "--dry-run", "--verbose")
    assert f"would remove data/cache/{killed_write.name} (" in dry
    assert "temporary file of a killed run" in dry and "working folder of a killed run" in dry
    assert f"of live process {os.getpid()}" in dry and "s ago; removable after 900 s" in dry
    text = _ok(three_runs, "clean")

    assert f"removed data/cache/{killed_write.name} (" in text
    assert f"removed data/cache/{killed_folder.name} (" in text
    assert "removed 2 cache entries" in text and "2 temporary entries in use" in text
    assert not killed_write.exists() and not killed_folder.exists()
    assert live_write.exists() and fresh_write.exists() and scratch.exists()
    assert cache_files(cache) == artifacts
