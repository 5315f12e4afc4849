"""The SQLite run registry (curifactory_like.store), against real SQLite files in tmp_path."""

from __future__ import annotations

import multiprocessing
import pickle
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from queue import Empty

import pytest

from curifactory_like.errors import RunStoreError
from curifactory_like.store import (
    SCHEMA_VERSION,
    TIMESTAMP_FORMAT,
    ArtifactAction,
    RunStatus,
    RunStore,
)

WHEN = datetime(2024, 3, 1, 12, 30, 5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    """A fresh registry in tmp_path, closed after the test."""
    with RunStore(tmp_path / "cache") as opened:
        yield opened


def _start_many(path: str, barrier: object, queue: object, count: int) -> None:
    """Child process: wait for the others, then start ``count`` runs of one experiment."""
    barrier.wait(timeout=60)  # type: ignore[attr-defined]
    with RunStore(path) as child_store:
        numbers = [
            child_store.start_run("race", datetime.now(), {})["run_number"] for _ in range(count)
        ]
    queue.put(numbers)  # type: ignore[attr-defined]


def test_start_run_returns_run_info(store: RunStore) -> None:
    """start_run returns the reference, identity fields, status 'incomplete' and the given info."""
    run = store.start_run("sweep", WHEN, {"notes": "first", "params": {"p": [["a", "1234"]]}})
    assert run == {
        "reference": "sweep_1_2024-03-01-T123005",
        "experiment_name": "sweep",
        "run_number": 1,
        "timestamp": WHEN.strftime(TIMESTAMP_FORMAT),
        "status": "incomplete",
        "notes": "first",
        "params": {"p": [["a", "1234"]]},
    }


def test_run_numbers_increase_per_experiment(store: RunStore) -> None:
    """Successive runs of one experiment get run numbers 1, 2, 3."""
    numbers = [store.start_run("sweep", WHEN, {})["run_number"] for _ in range(3)]
    assert numbers == [1, 2, 3]


def test_run_numbers_are_independent_across_experiments(store: RunStore) -> None:
    """Each experiment counts its own runs from 1."""
    store.start_run("a", WHEN, {})
    store.start_run("a", WHEN, {})
    assert store.start_run("b", WHEN, {})["run_number"] == 1
    assert store.start_run("a", WHEN, {})["run_number"] == 3


def test_concurrent_processes_never_share_a_run_number(tmp_path: Path) -> None:
    """Four processes starting 20 runs each at the same moment get 80 distinct run numbers."""
    ctx = multiprocessing.get_context("spawn")
    workers, per_worker = 4, 20
    barrier, queue = ctx.Barrier(workers), ctx.Queue()
    path = str(tmp_path / "shared" / "cache")  # the database does not exist yet either
    procs = [
        ctx.Process(target=_start_many, args=(path, barrier, queue, per_worker))
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    results = []
    while len(results) < workers and (any(p.is_alive() for p in procs) or not queue.empty()):
        try:
            results.append(queue.get(timeout=0.5))
        except Empty:
            continue  # a crashed child ends the wait instead of a long timeout
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * workers
    numbers = sorted(n for result in results for n in result)
    assert numbers == list(range(1, workers * per_worker + 1))
    with RunStore(path) as check:
        assert len(check.list_runs("race")) == workers * per_worker


def test_explicit_run_number_that_exists_raises(store: RunStore) -> None:
    """Asking for a run number the experiment already used raises RunStoreError."""
    store.start_run("sweep", WHEN, {})
    with pytest.raises(RunStoreError, match="already exists"):
        store.start_run("sweep", WHEN, {}, run_number=1)


def test_update_run_merges_and_persists_status_and_error(tmp_path: Path) -> None:
    """update_run merges fields into the run info and the status/error survive reopening."""
    with RunStore(tmp_path) as first:
        ref = first.start_run("sweep", WHEN, {"notes": "n"})["reference"]
        merged = first.update_run(ref, status=RunStatus.ERROR, error=ValueError("boom"))
    assert merged is not None
    assert (merged["notes"], merged["status"], merged["error"]) == ("n", "error", "boom")
    with RunStore(tmp_path) as second:
        assert second.get_run(ref) == merged
    with sqlite3.connect(tmp_path / "store.db") as conn:
        row = conn.execute("SELECT status, error FROM runs WHERE reference = ?", (ref,)).fetchone()
    conn.close()
    assert row == ("error", "boom")


def test_update_run_cannot_change_identity(store: RunStore) -> None:
    """update_run refuses to change a field that names the run."""
    ref = store.start_run("sweep", WHEN, {})["reference"]
    with pytest.raises(RunStoreError, match="run_number"):
        store.update_run(ref, run_number=7)


def test_unknown_reference_is_none(store: RunStore) -> None:
    """get_run and update_run of an unknown reference return None."""
    assert store.get_run("nope_1_2024-01-01-T000000") is None
    assert store.update_run("nope_1_2024-01-01-T000000", status="complete") is None


def test_list_and_latest_runs(store: RunStore) -> None:
    """list_runs is oldest first (optionally per experiment) and latest_run is the newest."""
    refs = [store.start_run(name, WHEN, {})["reference"] for name in ("a", "b", "a")]
    assert [run["reference"] for run in store.list_runs()] == refs
    assert [run["reference"] for run in store.list_runs("a")] == [refs[0], refs[2]]
    assert store.latest_run("a")["reference"] == refs[2]  # type: ignore[index]
    assert store.latest_run("missing") is None


def test_param_set_upsert_replaces_by_hash(store: RunStore) -> None:
    """Registering a hash again replaces its entry instead of adding a second one."""
    store.register_param_sets([{"hash": "abc123", "name": "old", "representation": {"a": 1}}])
    store.register_param_sets(
        [{"hash": "abc123", "name": "new", "representation": {"a": 2}, "hash_mode": "v1"}]
    )
    assert store.get_param_set("abc123") == {
        "hash": "abc123",
        "name": "new",
        "representation": {"a": 2},
        "explanation": {},
        "hash_mode": "v1",
    }
    assert store.find_param_sets("old") == []


def test_param_set_prefix_lookup(store: RunStore) -> None:
    """A unique hash prefix finds its parameter set; an ambiguous or unknown prefix gives None."""
    store.register_param_sets([{"hash": h, "name": "p"} for h in ("aa11", "aa22", "bb33")])
    assert store.get_param_set("b")["hash"] == "bb33"  # type: ignore[index]
    assert store.get_param_set("aa2")["hash"] == "aa22"  # type: ignore[index]
    assert store.get_param_set("aa") is None
    assert store.get_param_set("cc") is None


def test_exact_hash_wins_over_prefix(store: RunStore) -> None:
    """A hash that is also a prefix of another hash is found exactly."""
    store.register_param_sets([{"hash": "ab", "name": "short"}, {"hash": "abcd", "name": "long"}])
    assert store.get_param_set("ab")["name"] == "short"  # type: ignore[index]


def test_register_many_param_sets(store: RunStore) -> None:
    """A thousand parameter sets register in one call and are all findable."""
    store.register_param_sets(
        {"hash": f"{i:064x}", "name": f"set{i % 10}", "explanation": {"i": i}} for i in range(1000)
    )
    assert len(store.find_param_sets("set3")) == 100
    assert store.get_param_set(f"{999:064x}")["explanation"] == {"i": 999}  # type: ignore[index]


def test_combo_hash_roundtrip(store: RunStore) -> None:
    """A registered combo hash reads back with its active name and member hashes."""
    store.register_combo_hash("c0ffee", "compare", ["aa11", "bb22"])
    assert store.get_combo_hash("c0ffee") == {
        "hash": "c0ffee",
        "active": "compare",
        "members": ["aa11", "bb22"],
    }


def test_artifact_producer_is_the_computing_run(store: RunStore) -> None:
    """artifact_producers names the run that computed a path, not a later run that loaded it."""
    first = store.start_run("sweep", WHEN, {})["reference"]
    second = store.start_run("sweep", WHEN, {})["reference"]
    entry = {"path": "data/cache/x.csv", "record_hash": "ab", "stage": "load", "name": "x"}
    store.record_artifacts(first, [{**entry, "action": "computed", "size": 10, "checksum": "c"}])
    store.record_artifacts(second, [{**entry, "action": ArtifactAction.LOADED}])
    assert store.artifact_producers(["data/cache/x.csv", "never/recorded"]) == {
        "data/cache/x.csv": first
    }


def test_artifact_producer_follows_overwrite(store: RunStore) -> None:
    """A run that overwrote a path becomes its producer."""
    first = store.start_run("sweep", WHEN, {})["reference"]
    second = store.start_run("sweep", WHEN, {})["reference"]
    store.record_artifacts(first, [{"path": "p", "action": "computed"}])
    store.record_artifacts(second, [{"path": "p", "action": ArtifactAction.OVERWRITTEN}])
    assert store.artifact_producers(["p"]) == {"p": second}


def test_artifact_producers_for_thousands_of_paths(store: RunStore) -> None:
    """artifact_producers answers for 4000 paths across query chunks."""
    first = store.start_run("sweep", WHEN, {})["reference"]
    second = store.start_run("sweep", WHEN, {})["reference"]
    paths = [f"cache/{i}.pkl" for i in range(4000)]
    store.record_artifacts(first, [{"path": p, "action": "computed"} for p in paths[:2000]])
    store.record_artifacts(second, [{"path": p, "action": "computed"} for p in paths[2000:]])
    producers = store.artifact_producers(paths)
    assert len(producers) == 4000
    assert (producers["cache/0.pkl"], producers["cache/3999.pkl"]) == (first, second)


def test_runs_using_lists_every_recording_run(store: RunStore) -> None:
    """runs_using lists each run that recorded a path, whatever it did with it, once."""
    refs = [store.start_run("sweep", WHEN, {})["reference"] for _ in range(3)]
    store.record_artifacts(refs[0], [{"path": "p", "action": "computed"}])
    store.record_artifacts(refs[2], [{"path": "p", "action": "skipped"}] * 2)
    assert store.runs_using("p") == [refs[0], refs[2]]


def test_record_artifacts_of_unknown_run_raises(store: RunStore) -> None:
    """Recording artifacts for a run that was never started raises RunStoreError."""
    with pytest.raises(RunStoreError, match="start_run"):
        store.record_artifacts("ghost_1_2024-01-01-T000000", [{"path": "p", "action": "loaded"}])


def test_reopening_sees_earlier_data(tmp_path: Path) -> None:
    """A new RunStore on the same folder sees runs, parameter sets and artifacts written before."""
    with RunStore(tmp_path) as first:
        ref = first.start_run("sweep", WHEN, {"k": "v"})["reference"]
        first.register_param_sets([{"hash": "ff00", "name": "p"}])
        first.record_artifacts(ref, [{"path": "p", "action": "computed"}])
    with RunStore(tmp_path) as second:
        assert second.get_run(ref)["k"] == "v"  # type: ignore[index]
        assert second.get_param_set("ff00") is not None
        assert second.artifact_producers(["p"]) == {"p": ref}
        assert second.start_run("sweep", WHEN, {})["run_number"] == 2


def test_store_db_created_under_new_nested_path(tmp_path: Path) -> None:
    """store.db is created, with its missing parent folders, under manager_cache_path."""
    target = tmp_path / "does" / "not" / "exist"
    with RunStore(target) as created:
        assert created.path == target / "store.db"
    assert (target / "store.db").is_file()


def test_wal_journal_mode_is_on(store: RunStore) -> None:
    """The database uses WAL journaling."""
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


def test_newer_schema_version_raises(tmp_path: Path) -> None:
    """A store.db written by a newer schema version is refused with RunStoreError."""
    RunStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "store.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RunStoreError, match="newer"):
        RunStore(tmp_path)


def test_closed_store_raises(tmp_path: Path) -> None:
    """Using a RunStore after close() raises RunStoreError."""
    closed = RunStore(tmp_path)
    closed.close()
    closed.close()
    with pytest.raises(RunStoreError, match="closed"):
        closed.list_runs()


def test_pickled_store_reopens_same_database(store: RunStore) -> None:
    """A pickled RunStore unpickles as a new connection to the same store.db."""
    ref = store.start_run("sweep", WHEN, {})["reference"]
    with pickle.loads(pickle.dumps(store)) as copy:
        assert copy.path == store.path
        assert copy.get_run(ref) is not None
