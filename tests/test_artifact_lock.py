"""The per-artifact locks: one byte-range lock per artifact in a single lock file per cache,
exclusive between processes, re-entrant within a thread, exclusive between threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from curifactory_like.caching.artifact_lock import LOCK_FOLDER, artifact_lock, lock_path

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX record locks")

PROBE = textwrap.dedent(
    """
    import sys
    from curifactory_like.caching.artifact_lock import artifact_lock
    cache, artifact, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    print("asking", flush=True)
    with artifact_lock(cache, [artifact], exclusive=(mode == "ex")):
        print("got", flush=True)
    """
)


def _probe(cache: Path, artifact: Path, mode: str) -> subprocess.Popen:
    """A process that asks for the lock; returns once it has asked (not yet got it)."""
    process = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(cache), str(artifact), mode],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "asking"
    return process


def _still_waiting(process: subprocess.Popen) -> bool:
    time.sleep(0.5)
    return process.poll() is None


def _got_it(process: subprocess.Popen) -> bool:
    process.wait(timeout=60)
    assert process.stdout is not None
    out = process.stdout.read()  # through the reader _probe used (it may hold "got" already)
    process.stdout.close()
    return process.returncode == 0 and out.strip() == "got"


def test_a_writer_blocks_readers_in_other_processes_until_it_is_done(tmp_path: Path):
    artifact = tmp_path / "cache" / "exp_abc_stage_out.pkl"
    with artifact_lock(str(tmp_path), [str(artifact)], exclusive=True):
        reader = _probe(tmp_path, artifact, "sh")
        assert _still_waiting(reader), "a reader got the lock while the writer held it"
    assert _got_it(reader)


def test_other_artifacts_are_not_blocked(tmp_path: Path):
    held = tmp_path / "cache" / "a.pkl"
    other = tmp_path / "cache" / "b.pkl"
    with artifact_lock(str(tmp_path), [str(held)], exclusive=True):
        assert _got_it(_probe(tmp_path, other, "ex"))


def test_readers_share_the_lock_across_processes(tmp_path: Path):
    artifact = tmp_path / "cache" / "a.pkl"
    with artifact_lock(str(tmp_path), [str(artifact)], exclusive=False):
        assert _got_it(_probe(tmp_path, artifact, "sh"))


def test_a_nested_shared_lock_keeps_the_outer_exclusive_one(tmp_path: Path):
    """Record locks convert silently when re-taken by the same process; the table must not let
    the inner (shared) hold downgrade or release the writer's exclusive lock."""
    artifact = tmp_path / "cache" / "a.pkl"
    with artifact_lock(str(tmp_path), [str(artifact)], exclusive=True):
        with artifact_lock(str(tmp_path), [str(artifact)], exclusive=False):
            pass
        reader = _probe(tmp_path, artifact, "sh")
        assert _still_waiting(reader), "the nested shared lock released the exclusive one"
    assert _got_it(reader)


def test_threads_of_one_process_exclude_each_other(tmp_path: Path):
    artifact = str(tmp_path / "cache" / "a.pkl")
    inside: list[int] = []
    overlaps: list[bool] = []

    def write(marker: int) -> None:
        for _ in range(20):
            with artifact_lock(str(tmp_path), [artifact], exclusive=True):
                inside.append(marker)
                time.sleep(0.002)
                overlaps.append(len(inside) > 1)
                inside.remove(marker)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(overlaps) == 60 and not any(overlaps)


def test_one_lock_file_per_cache_whatever_the_number_of_artifacts(tmp_path: Path):
    for index in range(50):
        with artifact_lock(str(tmp_path), [str(tmp_path / f"artifact_{index}.pkl")], True):
            pass
    assert os.listdir(tmp_path / LOCK_FOLDER) == [os.path.basename(lock_path(str(tmp_path)))]


def test_a_process_keeps_neither_every_lock_file_nor_every_lock_open(tmp_path: Path):
    """A long-lived process (a notebook) that used many caches and artifacts keeps a bounded
    number of lock files open and no entry for locks it no longer holds."""
    from curifactory_like.caching import artifact_lock as module

    caches = [tmp_path / f"cache{index}" for index in range(3 * module.MAX_IDLE_LOCK_FILES)]
    for cache in caches:
        for index in range(5):
            with artifact_lock(str(cache), [str(cache / f"a{index}.pkl")], exclusive=True):
                pass
    table = module._locks
    mine = [path for path in table.descriptors if path.startswith(str(tmp_path))]
    assert len(mine) <= module.MAX_IDLE_LOCK_FILES
    assert not [key for key in table.held if key[0].startswith(str(tmp_path))]
    # a lock file closed while idle is reopened, and its locks still exclude other processes
    artifact = caches[0] / "a0.pkl"
    with artifact_lock(str(caches[0]), [str(artifact)], exclusive=True):
        reader = _probe(caches[0], artifact, "sh")
        assert _still_waiting(reader)
    assert _got_it(reader)


def test_a_reader_that_cannot_create_the_lock_file_reads_without_it(tmp_path: Path):
    """A read-only cache (here: the lock folder cannot be made) does not stop a reader; a writer,
    which could not write there either, gets the error."""
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder's lock folder would go")
    artifact = tmp_path / "artifact.json"
    entered = []
    with artifact_lock(str(blocked), [str(artifact)], exclusive=False):
        entered.append(True)
    assert entered == [True]
    with pytest.raises(OSError), artifact_lock(str(blocked), [str(artifact)], exclusive=True):
        pass
