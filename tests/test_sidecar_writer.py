"""Sidecars written behind the stage that made them (``caching.sidecar_writer``).

In an ``experiment`` run each sidecar is written on a writer thread while the next stage
computes. What users depend on: the artifact stays locked until its sidecar is in place, a read
in the same thread sees the sidecar, and a sidecar that cannot be written fails the run with a
message naming the artifact, without leaving a cached artifact that the next run would trust.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _projects import (
    GOLDEN_HASH_A,
    NO_TRACEBACK,
    calls,
    output,
    registry_runs,
    reset_calls,
    run_cli,
    write_tiny,
)
from test_artifact_lock import _got_it, _probe, _still_waiting

from curifactory_like.caching import sidecar_writer
from curifactory_like.caching.artifact_lock import artifact_lock
from curifactory_like.caching.base import encode_sidecar
from curifactory_like.caching.sidecars import read_sidecar
from curifactory_like.errors import CacheWriteError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX record locks")


def _write_behind(tmp_path: Path, payload: dict) -> tuple[Path, Path]:
    """Write an artifact under its exclusive lock and hand its sidecar to the writer thread."""
    artifact = tmp_path / "cache" / "exp_abc_stage_out.json"
    sidecar = artifact.with_name("exp_abc_stage_out_metadata.json")
    artifact.parent.mkdir(parents=True, exist_ok=True)
    locks = contextlib.ExitStack()
    locks.enter_context(artifact_lock(str(tmp_path), [str(artifact)], exclusive=True))
    artifact.write_text("42")
    text, remembered = encode_sidecar(payload)
    sidecar_writer.write_behind(str(sidecar), text, remembered, locks, ("out", "x", "p1"))
    return artifact, sidecar


def _occupy_writer() -> threading.Event:
    """Keep the writer thread busy until the returned event is set."""
    release = threading.Event()
    sidecar_writer._executor().submit(release.wait, 30)
    return release


def test_the_artifact_stays_locked_until_its_sidecar_is_settled(tmp_path: Path):
    artifact, sidecar = _write_behind(tmp_path, {"stage": "x", "artifact_size": 2})
    try:
        reader = _probe(tmp_path, artifact, "sh")
        assert _still_waiting(reader), "another process read the artifact before its sidecar"
    finally:
        sidecar_writer.settle()
    assert _got_it(reader)
    assert json.loads(sidecar.read_text()) == {"stage": "x", "artifact_size": 2}


def test_a_read_in_the_same_thread_waits_for_the_sidecar_in_flight(tmp_path: Path):
    release = _occupy_writer()
    _, sidecar = _write_behind(tmp_path, {"stage": "x", "extra": {"note": "kept"}})
    assert not sidecar.exists()  # still queued behind the busy writer
    threading.Timer(0.3, release.set).start()
    assert read_sidecar(str(sidecar)) == {"stage": "x", "extra": {"note": "kept"}}
    assert not sidecar_writer.has_pending()


def test_a_failed_write_is_raised_by_settle_after_the_lock_is_released(tmp_path: Path):
    artifact, sidecar = _write_behind(tmp_path / "first", {"stage": "x"})
    sidecar_writer.settle()
    sidecar.unlink()
    sidecar.mkdir()  # a folder where the sidecar goes: the write cannot replace it
    artifact, sidecar = _write_behind(tmp_path / "first", {"stage": "x"})
    with pytest.raises(CacheWriteError, match="output 'out' of stage 'x' of p1") as raised:
        sidecar_writer.settle()
    assert str(sidecar) in str(raised.value)
    assert _got_it(_probe(tmp_path / "first", artifact, "ex")), "the failed write kept its lock"
    assert not [p for p in sidecar.parent.iterdir() if p.name.startswith(".")], "temp file left"


def test_a_forked_child_starts_without_the_parents_writes(tmp_path: Path):
    """``--parallel`` forks workers: a child must get a working writer and no pending work."""
    script = f"""
import contextlib, os, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from curifactory_like.caching import sidecar_writer
from curifactory_like.caching.base import encode_sidecar
folder = {str(tmp_path)!r}
def write(name):
    text, remembered = encode_sidecar({{"name": name}})
    sidecar_writer.write_behind(os.path.join(folder, name), text, remembered,
                                contextlib.ExitStack(), (name, "stage", "record"))
write("parent.json")
pid = os.fork()
if pid == 0:
    ok = not sidecar_writer.has_pending()
    write("child.json")
    sidecar_writer.settle()
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
sidecar_writer.settle()
sys.exit(os.waitstatus_to_exitcode(status))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "parent.json").read_text()) == {"name": "parent.json"}
    assert json.loads((tmp_path / "child.json").read_text()) == {"name": "child.json"}


def test_an_unwritable_sidecar_fails_the_run_and_the_artifact_is_recomputed(tmp_path: Path):
    root = write_tiny(tmp_path)
    blocked = root / "data" / "cache" / f"tiny_{GOLDEN_HASH_A}_double_y_metadata.json"
    blocked.mkdir(parents=True)

    failed = run_cli(root, "run", "tiny", "-p", "tiny")
    text = output(failed)
    assert failed.returncode != 0
    assert "in stage 'double' of" in text, text
    assert "metadata sidecar of output 'y' of stage 'double'" in text
    assert str(blocked.name) in text
    assert NO_TRACEBACK not in text
    assert registry_runs(root)[-1]["status"] == "error"
    assert blocked.with_name(f"tiny_{GOLDEN_HASH_A}_double_y.json").exists()

    blocked.rmdir()
    reset_calls(root)
    rerun = run_cli(root, "run", "tiny", "-p", "tiny")
    assert rerun.returncode == 0, output(rerun)
    assert calls(root)["double a"] == 1, "an artifact without its sidecar was trusted"
    sidecar = json.loads(blocked.read_text())
    assert sidecar["artifact_checksum"].startswith("sha256:")
    assert registry_runs(root)[-1]["status"] == "complete"
