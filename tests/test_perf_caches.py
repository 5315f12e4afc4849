"""The caches that keep warm runs cheap give the same results as the work they replace."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

from curifactory_like import ArtifactManager, Record
from curifactory_like.caching import sidecars
from curifactory_like.freeze_cache import CACHE_NAME, cached_pip_freeze
from curifactory_like.logformat import SharedFormatter
from curifactory_like.provenance import pip_freeze


def test_pip_freeze_cache_equals_fresh_freeze_and_sees_new_installs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cached text is pip_freeze()'s; installing a distribution invalidates it."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    cache_dir = tmp_path / "data"
    first = cached_pip_freeze(str(cache_dir))
    assert first == pip_freeze()
    assert (cache_dir / CACHE_NAME).exists()
    assert cached_pip_freeze(str(cache_dir)) == first
    dist = site / "zzfreezeprobe-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zzfreezeprobe\nVersion: 1.2.3\n")
    os.utime(site, ns=(0, os.stat(site).st_mtime_ns + 1_000_000))  # a later mtime, whatever the clock
    after = cached_pip_freeze(str(cache_dir))
    assert "zzfreezeprobe==1.2.3\n" in after
    assert after == pip_freeze()


def test_pip_freeze_cache_ignores_a_corrupt_cache_file(tmp_path: Path) -> None:
    (tmp_path / CACHE_NAME).write_text("{not json")
    assert cached_pip_freeze(str(tmp_path)) == pip_freeze()
    assert json.loads((tmp_path / CACHE_NAME).read_text())["text"] == pip_freeze()


def test_pip_freeze_user_copy_serves_a_project_whose_data_was_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold run (data/ removed) reuses the per-user copy; a folder others can write is not
    used."""
    import shutil
    import tempfile

    from curifactory_like.freeze_cache import user_cache_dir

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    data = tmp_path / "data"
    first = cached_pip_freeze(str(data))
    user = user_cache_dir()
    assert user is not None and user.startswith(str(tmp_path / "tmp"))
    user_copy = Path(user) / CACHE_NAME
    marked = json.loads(user_copy.read_text())
    marked["text"] = first + "# from the user copy\n"
    user_copy.write_text(json.dumps(marked))
    shutil.rmtree(data)
    assert cached_pip_freeze(str(data)) == first + "# from the user copy\n"
    assert json.loads((data / CACHE_NAME).read_text())["text"] == marked["text"]
    shutil.rmtree(data)
    assert cached_pip_freeze(str(data), shared=False) == pip_freeze()
    os.chmod(user, 0o777)
    assert user_cache_dir() is None
    shutil.rmtree(data)
    assert cached_pip_freeze(str(data)) == pip_freeze()


def test_sidecar_reads_follow_rewrites_and_hand_out_copies(tmp_path: Path) -> None:
    """A rewritten sidecar is parsed again; callers cannot change each other's copy."""
    path = tmp_path / "a_metadata.json"
    path.write_text(json.dumps({"artifact_size": 3, "extra": {"k": 1}}))
    first = sidecars.read_sidecar(str(path))
    first["artifact_size"] = 99
    first["extra"]["k"] = 2
    again = sidecars.read_sidecar(str(path))
    assert again == {"artifact_size": 3, "extra": {"k": 1}}
    tmp = tmp_path / "tmp.json"
    tmp.write_text(json.dumps({"artifact_size": 3, "extra": {"k": 5}}))  # same size, new inode
    os.replace(tmp, path)
    assert sidecars.read_sidecar(str(path))["extra"] == {"k": 5}
    path.unlink()
    assert sidecars.read_sidecar(str(path)) is None


def test_torn_artifact_is_still_detected_after_its_sidecar_was_read(project) -> None:
    """Size and checksum checks use the current file, not what an earlier read remembered."""
    from curifactory_like.caching import JsonCacher

    manager = ArtifactManager("perf", dry=False, status_override=None)
    record = Record(manager, None)
    manager.current_stage_name = "s"
    cacher = JsonCacher(name="out", record=record)
    cacher.stage = "s"
    cacher.save({"value": list(range(50))})
    cacher.collect_metadata()
    cacher.save_metadata()
    assert cacher.integrity_problem(full=True) is None
    original = Path(cacher.get_path()).read_bytes()
    Path(cacher.get_path()).write_bytes(original[:10])
    assert "size" in str(cacher.integrity_problem(full=False))
    Path(cacher.get_path()).write_bytes(original.replace(b"49", b"48"))  # same size
    assert cacher.integrity_problem(full=False) is None
    assert "checksum" in str(cacher.integrity_problem(full=True))


def test_record_index_stays_right_when_the_records_list_changes(project) -> None:
    manager = ArtifactManager("perf", dry=True, status_override=None)
    records = [Record(manager, None) for _ in range(5)]
    assert [r.get_record_index() for r in records] == [0, 1, 2, 3, 4]
    manager.records.remove(records[1])
    assert [r.get_record_index() for r in records] == [0, -1, 1, 2, 3]
    manager.records.insert(0, records[1])
    assert [r.get_record_index() for r in records] == [1, 0, 2, 3, 4]
    hidden = Record(manager, None, hide=True)
    assert hidden.get_record_index() == -1


def test_shared_formatter_gives_the_standard_text_once_per_record() -> None:
    fmt = "%(asctime)s [%(levelname)s] - %(message)s"
    shared, standard = SharedFormatter(fmt), logging.Formatter(fmt)
    for created_offset in (0.0, 0.25, 1.5, 61.0):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m %s", ("a",), None)
        record.created += created_offset
        record.msecs = (record.created - int(record.created)) * 1000
        assert shared.format(record) == standard.format(record)
        assert shared.format(record) == standard.format(record)  # the reused text
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "e", (), sys.exc_info())
    assert shared.format(record) == standard.format(record)


def test_gc_batch_mode_is_undone_after_the_block() -> None:
    """The CLI's GC settings do not outlive the command (in-process callers keep collecting)."""
    import gc

    from curifactory_like import gcpolicy

    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with gcpolicy.batch_mode():
        assert gc.get_threshold() == gcpolicy.BATCH_THRESHOLDS
        gcpolicy.imports_done()
        assert gc.get_freeze_count() > frozen_before
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    gcpolicy.imports_done()  # outside batch mode: nothing frozen
    assert gc.get_freeze_count() == 0


def test_only_the_console_script_freezes_the_heap_on_exit(project, monkeypatch) -> None:
    """`experiment` freezes the heap just before the interpreter exits (the shutdown collection
    would walk every object); a process calling `cli.main()` itself keeps collecting."""
    import gc
    import subprocess

    from _projects import command_env, write_tiny

    from curifactory_like import cli

    root = write_tiny(project.root)
    monkeypatch.setattr(sys, "argv", ["experiment", "run", "tiny", "--no-report"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 0
    assert gc.get_freeze_count() == 0

    script = (
        "import atexit, gc, sys; sys.path.insert(0, '.');"
        "atexit.register(lambda: sys.stderr.write('FROZEN=%d' % gc.get_freeze_count()));"
        "sys.argv = ['experiment', 'run', 'tiny', '--no-report'];"
        "from curifactory_like.cli import console_main; console_main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=command_env(), capture_output=True,
        text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    frozen = int(done.stderr.rsplit("FROZEN=", 1)[1])
    assert frozen > 0


def test_map_to_a_pipe_writes_the_plain_map_without_importing_rich(project) -> None:
    """`experiment map` into a pipe prints the map text without loading rich (its import is a
    noticeable part of a map's time); the output is the plain text of every stage call."""
    import subprocess

    from _projects import command_env, write_tiny

    root = write_tiny(project.root)
    script = (
        "import sys; sys.path.insert(0, '.'); from curifactory_like.cli import main; "
        "status = main(['map', 'tiny']); "
        "sys.stderr.write('RICH_LOADED=%s' % any(m.split('.')[0] == 'rich' for m in sys.modules));"
        "sys.exit(status)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
        env=command_env(), timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RICH_LOADED=False" in result.stderr
    assert "Totals: 9 compute, 0 overwrite, 0 load, 0 skip" in result.stdout
    assert "\x1b[" not in result.stdout
