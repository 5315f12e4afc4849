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


def test_pip_freeze_cache_key_is_the_interpreter_not_the_name_it_was_started_by(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python`` and the ``python3.x`` it links to (the console script's interpreter) share the
    cached freeze; another interpreter does not."""
    from curifactory_like.freeze_cache import environment_key

    key = environment_key()
    link = tmp_path / "python"
    link.symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(link))
    assert environment_key() == key
    other = tmp_path / "other-python"
    other.write_text("")
    monkeypatch.setattr(sys, "executable", str(other))
    assert environment_key() != key


def test_pip_freeze_cache_key_is_the_same_in_every_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two projects of one environment share the per-user copy: the project folder (on
    ``sys.path`` and the working directory) and an import hook's relative marker entry (as an
    editable install adds) do not enter the key; a real folder on ``sys.path`` does."""
    from curifactory_like.freeze_cache import environment_key

    keys = []
    base = list(sys.path)
    for name in ("first", "second"):
        project = tmp_path / name
        project.mkdir()
        (project / "data").mkdir()  # a run's outputs change the project folder's time
        monkeypatch.chdir(project)
        monkeypatch.setattr(
            sys, "path", ["", str(project), "__editable__.pkg.finder.__path_hook__", *base]
        )
        keys.append(environment_key())
    assert keys[0] == keys[1]
    extra = tmp_path / "extra-site"
    extra.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(extra)])
    assert environment_key() != keys[1]


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


# -- the sidecar index ---------------------------------------------------------------------------


def _sidecar(folder: Path, name: str, content: dict) -> Path:
    path = folder / f"exp_{name}_metadata.json"
    path.write_text(json.dumps(content, indent=2))
    return path


def test_sidecar_index_is_used_only_for_files_whose_bytes_match(tmp_path: Path) -> None:
    """After a copy of the cache (new inodes and times) the index still serves unchanged
    sidecars; a sidecar whose bytes changed, even to the same size, is parsed from the file."""
    import pickle

    cache = tmp_path / "cache"
    cache.mkdir()
    same = _sidecar(cache, "same", {"artifact_size": 1, "extra": {}})
    edited = _sidecar(cache, "edited", {"artifact_size": 2, "extra": {}})
    sidecars.forget_sidecars()
    sidecars.read_sidecar(str(same)), sidecars.read_sidecar(str(edited))
    assert sidecars.save_index(str(cache), "exp")
    index_file = Path(sidecars.index_path(str(cache), "exp"))
    # plant a marker in the index entry of the unchanged file: it shows the index was used
    index = pickle.loads(index_file.read_bytes())
    digest, (keys, values) = index["entries"][same.name]
    index["entries"][same.name] = (digest, ((*keys, "marker"), (*values, "from the index")))
    index_file.write_bytes(pickle.dumps(index))
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(cache, copy)
    (copy / edited.name).write_text(edited.read_text().replace('"artifact_size": 2', '"artifact_size": 3'))
    sidecars.forget_sidecars()
    assert sidecars.load_index(str(copy), "exp") == 2
    assert sidecars.read_sidecar(str(copy / same.name))["marker"] == "from the index"
    assert sidecars.read_sidecar(str(copy / edited.name)) == {"artifact_size": 3, "extra": {}}
    assert sidecars.save_index(str(copy), "exp")  # the edited file was parsed: index refreshed
    sidecars.forget_sidecars()
    assert sidecars.load_index(str(copy), "exp") == 2
    sidecars.read_sidecar(str(copy / same.name)), sidecars.read_sidecar(str(copy / edited.name))
    assert not sidecars.save_index(str(copy), "exp")  # nothing new: not rewritten
    sidecars.forget_sidecars()


def test_sidecar_index_that_is_damaged_or_hostile_is_ignored(tmp_path: Path) -> None:
    """A truncated index, or one that would call a function when unpickled, is not used, runs
    nothing, and every sidecar is read from its file."""
    import pickle

    cache = tmp_path / "cache"
    cache.mkdir()
    path = _sidecar(cache, "a", {"artifact_size": 1, "extra": {}})
    index_file = Path(sidecars.index_path(str(cache), "exp"))
    index_file.parent.mkdir()
    marker = tmp_path / "ran"

    class Hostile:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    for damaged in (b"\x80\x04garbage", pickle.dumps({"format": 1, "entries": Hostile()})):
        index_file.write_bytes(damaged)
        sidecars.forget_sidecars()
        assert sidecars.load_index(str(cache), "exp") == 0
        assert not marker.exists()
        assert sidecars.read_sidecar(str(path)) == {"artifact_size": 1, "extra": {}}
    sidecars.forget_sidecars()


def test_cold_run_writes_the_index_and_a_warm_copy_uses_it_unchanged(project, tmp_path) -> None:
    """The experiment command's cold run indexes the sidecars it wrote; a warm run of a copy of
    the project gives the same results without rewriting the index; a dry run writes none."""
    import pickle
    import shutil

    from _projects import run_cli

    project.experiment(
        "basic",
        """
        import curifactory_like as cf
        from curifactory_like.caching import JsonCacher

        @cf.stage(outputs=["x"], cachers=[JsonCacher])
        def make(record):
            return record.params.value

        @cf.stage(inputs=["x"], outputs=["y"], cachers=[JsonCacher])
        def double(record, x):
            return 2 * x

        def run(param_sets, manager):
            for p in param_sets:
                double(make(cf.Record(manager, p)))
        """,
    )
    project.params(
        "basic",
        """
        from dataclasses import dataclass
        import curifactory_like as cf

        @dataclass
        class P(cf.ExperimentParameters):
            value: int = 0

        def get_params():
            return [P(name=f"p{i}", value=i) for i in range(3)]
        """,
    )
    cold = run_cli(project.root, "run", "basic", "-p", "basic")
    assert cold.returncode == 0, cold.stderr
    assert "Stage make executing" in cold.stderr + cold.stdout
    [index_file] = (project.root / "data" / "cache" / sidecars.INDEX_FOLDER).iterdir()
    indexed = len(pickle.loads(index_file.read_bytes())["entries"])
    sidecar_files = list((project.root / "data" / "cache").glob("*_metadata.json"))
    assert indexed == len(sidecar_files) > 0
    copy = tmp_path / "copy"
    shutil.copytree(project.root, copy, symlinks=True)
    copied_index = copy / index_file.relative_to(project.root)
    before = copied_index.stat().st_mtime_ns
    warm = run_cli(copy, "run", "basic", "-p", "basic")
    assert warm.returncode == 0, warm.stderr
    assert "Stage make executing" not in warm.stderr + warm.stdout
    assert copied_index.stat().st_mtime_ns == before
    shutil.rmtree(copy / "data" / "cache" / sidecars.INDEX_FOLDER)
    assert run_cli(copy, "run", "basic", "-p", "basic", "--dry").returncode == 0
    assert not (copy / "data" / "cache" / sidecars.INDEX_FOLDER).exists()


def test_a_sidecar_that_is_not_utf8_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are reported like any unparsable sidecar, so the artifact is
    treated as damaged (recomputed) instead of the run failing."""
    from curifactory_like.caching import JsonCacher

    artifact = tmp_path / "thing.json"
    artifact.write_text("1")
    (tmp_path / "thing_metadata.json").write_bytes(b'{"artifact_size": 1, "x": "\xff\xfe"}')
    with pytest.raises(json.JSONDecodeError, match="not UTF-8"):
        sidecars.read_sidecar(str(tmp_path / "thing_metadata.json"))
    cacher = JsonCacher(path_override=str(artifact))
    assert "unreadable" in cacher.integrity_problem()
