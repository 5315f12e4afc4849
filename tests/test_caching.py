"""Cachers: one contract for every built-in cacher, atomic writes, sidecars and path rules."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import curifactory_like as cf
from curifactory_like.caching import (
    FileReferenceCacher,
    JsonCacher,
    PandasCacher,
    PandasCsvCacher,
    PandasJsonCacher,
    PathRef,
    PickleCacher,
)
from curifactory_like.caching.atomic import atomic_open, file_checksum
from curifactory_like.errors import CachePathError


@dataclass
class P(cf.ExperimentParameters):
    x: int = 1


@pytest.fixture
def manager(project):
    return cf.ArtifactManager("cachetest", suppress_live_log=True)


def frame() -> pd.DataFrame:
    return pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.25, -2.0], "c": ["x", "y", "z"]})


CONTRACT = [
    (JsonCacher, {"k": [1, 2, 3], "s": "text"}, ".json"),
    (PickleCacher, {"arr": np.arange(4), "fn": len}, ".pkl"),
    (PandasCsvCacher, frame(), ".csv"),
    (PandasJsonCacher, frame(), ".json"),
    (lambda: PandasCacher(format="pickle"), frame(), ".pkl"),
    (lambda: PandasCacher(format="parquet"), frame(), ".parquet"),
    (lambda: PandasCacher(format="excel"), frame(), ".xlsx"),
    (lambda: PandasCacher(format="xml"), frame().reset_index(drop=True), ".xml"),
]


def _equal(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                      check_dtype=False)
        return True
    if isinstance(a, dict) and "arr" in a:
        return bool(np.array_equal(a["arr"], b["arr"])) and a["fn"] is b["fn"]
    return a == b


@pytest.mark.parametrize("make, value, extension", CONTRACT)
def test_cacher_round_trip_through_a_stage(manager, make, value, extension):
    """Every built-in cacher saves a stage output and loads an equal value on the next call."""
    calls = []
    cacher = make() if not isinstance(make, type) else make

    @cf.stage(outputs=["thing"], cachers=[cacher])
    def produce(record):
        calls.append(1)
        return value

    produce(cf.Record(manager, P()))
    loaded = produce(cf.Record(manager, P())).state["thing"]
    assert len(calls) == 1
    assert _equal(value, loaded)
    files = os.listdir(manager.cache_path)
    artifact = [f for f in files if f.endswith(f"_produce_thing{extension}")]
    assert len(artifact) == 1
    assert f"{artifact[0][: -len(extension)]}_metadata.json" in files


def test_path_follows_naming_convention(manager):
    """Artifacts live at [cache]/[prefix]_[hash]_[stage]_[name][ext]."""

    @cf.stage(outputs=["thing"], cachers=[JsonCacher])
    def produce(record):
        return 1

    record = produce(cf.Record(manager, P()))
    expected = os.path.join(
        manager.cache_path, f"cachetest_{record.get_hash()}_produce_thing.json"
    )
    assert os.path.exists(expected)


def test_subdir_and_prefix_honoured(manager):
    """A cacher's subdir and prefix change the directory and the file prefix."""

    @cf.stage(outputs=["thing"], cachers=[JsonCacher(subdir="raw/v1", prefix="shared")])
    def produce(record):
        return 1

    record = produce(cf.Record(manager, P()))
    expected = os.path.join(
        manager.cache_path, "raw", "v1", f"shared_{record.get_hash()}_produce_thing.json"
    )
    assert os.path.exists(expected)


def test_path_template_fields(manager):
    """path_override templates resolve {cache}, {params.x}, {hash}, {stage} and {name}."""

    @cf.stage(outputs=["thing"], cachers=[JsonCacher("{cache}/x{params.x}_{stage}_{name}.json")])
    def produce(record):
        return 1

    produce(cf.Record(manager, P(x=7)))
    assert os.path.exists(os.path.join(manager.cache_path, "x7_produce_thing.json"))


def test_sidecar_records_integrity_and_provenance(manager):
    """The sidecar holds the artifact's size, checksum, stage and the run that made it."""

    @cf.stage(outputs=["thing"], cachers=[JsonCacher])
    def produce(record):
        return {"v": 1}

    record = produce(cf.Record(manager, P()))
    path = os.path.join(manager.cache_path, f"cachetest_{record.get_hash()}_produce_thing")
    with open(path + "_metadata.json") as handle:
        metadata = json.load(handle)
    assert metadata["artifact_size"] == os.path.getsize(path + ".json")
    assert metadata["artifact_checksum"] == file_checksum(path + ".json")
    assert metadata["stage"] == "produce" and metadata["artifact_name"] == "thing"
    assert metadata["manager_run_info"]["reference"] == manager.get_reference_name()
    assert "params" not in metadata["manager_run_info"]


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    """A write that fails halfway leaves the previous file untouched and no temporary file."""
    target = tmp_path / "artifact.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(str(target), "w") as handle:
        handle.write("partial")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["artifact.json"]


def test_temporary_names_are_unique_in_threads_and_forked_children_and_name_their_writer(
    tmp_path,
):
    """Concurrent writers (threads, ``--parallel`` workers forked from one parent) never share a
    temporary file, and ``experiment clean`` can tell from each name which process wrote it."""
    import threading

    from curifactory_like.caching.atomic import temporary_sibling
    from curifactory_like.leftovers import identify

    target = str(tmp_path / "sub" / "artifact.csv")
    names = [temporary_sibling(target) for _ in range(50)]
    assert (tmp_path / "sub").is_dir()  # the folder is made for the writer
    threads = [
        threading.Thread(target=lambda: names.extend(temporary_sibling(target) for _ in range(50)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child writes its names to the pipe and exits at once
        os.close(read_end)
        text = "\n".join(temporary_sibling(target) for _ in range(50))
        os.write(write_end, text.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_names = pipe.read().split("\n")
    os.waitpid(child, 0)
    assert len(set(names + child_names)) == 300
    for name in names + child_names:
        assert name.endswith(".tmp.csv") and os.path.dirname(name) == str(tmp_path / "sub")
        leftover = identify(os.path.basename(name), is_dir=False)
        assert leftover is not None
        assert leftover.pid == (child if name in child_names else os.getpid())


def test_sidecar_text_reads_back_as_json_and_keeps_a_line_per_key():
    """The sidecar writer's JSON gives back what ``json.dumps(indent=2, default=str)`` would,
    and stays readable: each key, and each key of a nested dict, on a line of its own."""
    from curifactory_like.caching.sidecars import sidecar_text

    payload = {
        "stage": "train",
        "params": {"seed": "3", "alpha": 0.1, "name": "p\u00e9 \"quoted\"\n"},
        "extra": {"read_args": {"index_col": 0}, "to_args": {}, "kept": [1, 2.5, None]},
        "record_prior_stages": ["load", "featurize"],
        "when": object(),  # not JSON: written as its str(), as json.dumps(default=str) does
        "ratio": float("nan"),
        "flag": True,
        "empty": {},
    }
    text = sidecar_text(payload)
    expected = json.dumps(payload, indent=2, default=str)
    assert json.dumps(json.loads(text), sort_keys=True) == json.dumps(
        json.loads(expected), sort_keys=True
    )
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert '  "stage": "train",' in lines and '    "seed": "3",' in lines
    assert '    "read_args": {"index_col": 0},' in lines  # deeper levels stay on their line
    assert '  "record_prior_stages": ["load", "featurize"],' in lines
    for unusual in ({1: "int key"}, ["a", "list"], {"nested": {2: "int key"}}):
        assert json.loads(sidecar_text(unusual)) == json.loads(json.dumps(unusual, default=str))


def test_failed_cacher_write_keeps_previous_artifact(manager):
    """A cacher that cannot write raises CacheWriteError naming stage and output; old file intact."""

    @cf.stage(outputs=["table"], cachers=[PandasCsvCacher])
    def produce(record):
        return frame() if record.params.x == 1 else "not a frame"

    produce(cf.Record(manager, P(x=1)))
    before = sorted(os.listdir(manager.cache_path))
    with pytest.raises(cf.CacheWriteError, match="produce.*table"):
        produce(cf.Record(manager, P(x=2)))
    assert sorted(os.listdir(manager.cache_path)) == before


def test_torn_artifact_is_recomputed_with_warning(manager):
    """An artifact truncated after caching is recomputed with a warning naming the file."""
    calls = []

    @cf.stage(outputs=["thing"], cachers=[JsonCacher])
    def produce(record):
        calls.append(1)
        return {"values": list(range(100))}

    record = produce(cf.Record(manager, P()))
    path = os.path.join(manager.cache_path, f"cachetest_{record.get_hash()}_produce_thing.json")
    with open(path, "r+") as handle:
        handle.truncate(10)
    with pytest.warns(cf.errors.CacheIntegrityWarning, match=os.path.basename(path)):
        again = produce(cf.Record(manager, P()))
    assert again.state["thing"] == {"values": list(range(100))}
    assert len(calls) == 2


def test_missing_sidecar_means_recompute(manager):
    """An artifact whose sidecar is gone is not trusted: the stage runs again."""
    calls = []

    @cf.stage(outputs=["thing"], cachers=[JsonCacher])
    def produce(record):
        calls.append(1)
        return 5

    record = produce(cf.Record(manager, P()))
    os.remove(os.path.join(manager.cache_path,
                           f"cachetest_{record.get_hash()}_produce_thing_metadata.json"))
    with pytest.warns(cf.errors.CacheIntegrityWarning):
        produce(cf.Record(manager, P()))
    assert len(calls) == 2


def test_escaping_names_rejected(manager):
    """An artifact name or subdir leading outside the cache raises CachePathError."""
    record = cf.Record(manager, P())
    with pytest.raises(CachePathError):
        record.get_path("../../outside")
    with pytest.raises(CachePathError):
        record.get_path("thing", subdir="/etc")


def test_file_reference_cacher_requires_every_file(manager):
    """FileReferenceCacher is a hit only while every referenced file exists."""
    calls = []

    @cf.stage(outputs=["files"], cachers=[FileReferenceCacher])
    def write_files(record):
        calls.append(1)
        folder = record.get_dir("out")
        paths = [os.path.join(folder, f"f{i}.txt") for i in range(2)]
        for path in paths:
            with open(path, "w") as handle:
                handle.write("x")
        return paths

    paths = write_files(cf.Record(manager, P())).state["files"]
    write_files(cf.Record(manager, P()))
    os.remove(paths[0])
    write_files(cf.Record(manager, P()))
    assert len(calls) == 2


def test_pathref_tracks_the_stage_written_path(manager):
    """PathRef short-circuits when its own path exists; a wrong returned path is an error."""
    calls = []

    @cf.stage(outputs=["out"], cachers=[PathRef])
    def write(record):
        calls.append(1)
        path = record.stage_cachers[0].get_path()
        with open(path, "w") as handle:
            handle.write("data")
        return path if record.params.x == 1 else "elsewhere.txt"

    write(cf.Record(manager, P(x=1)))
    write(cf.Record(manager, P(x=1)))
    assert len(calls) == 1
    with pytest.raises(AssertionError):
        write(cf.Record(manager, P(x=2)))


def test_dry_cache_writes_no_cache_files(project):
    """A dry_cache manager runs stages without writing cache files."""
    manager = cf.ArtifactManager("cachetest", dry_cache=True, suppress_live_log=True)

    @cf.stage(outputs=["thing"], cachers=[JsonCacher])
    def produce(record):
        return 1

    assert produce(cf.Record(manager, P())).state["thing"] == 1
    assert not os.path.exists(manager.cache_path) or os.listdir(manager.cache_path) == []


def test_pandas_sidecar_written_once_in_a_stage_and_by_save_outside_one(manager, tmp_path):
    """PandasCacher.save writes its sidecar (curifactory does) when used on its own; in a stage
    the runtime writes it once, complete (the cacher's own fields and the artifact checksum)."""
    standalone = PandasCsvCacher(str(tmp_path / "table.csv"))
    standalone.save(frame())
    own = json.loads((tmp_path / "table_metadata.json").read_text())
    assert own["extra"]["pandas_version"] == pd.__version__

    writes = []
    original = PandasCsvCacher.save_metadata

    def counting(self):
        if not self.__dict__.get("sidecar_deferred"):
            writes.append(self.get_path())
        return original(self)

    @cf.stage(outputs=["table"], cachers=[PandasCsvCacher])
    def produce(record):
        return frame()

    PandasCsvCacher.save_metadata = counting
    try:
        record = produce(cf.Record(manager, P()))
    finally:
        PandasCsvCacher.save_metadata = original
    assert len(writes) == 1
    sidecar = json.loads(Path(writes[0].replace(".csv", "_metadata.json")).read_text())
    assert sidecar["extra"]["pandas_version"] == pd.__version__
    assert sidecar["artifact_checksum"].startswith("sha256:")
    assert sidecar["stage"] == "produce" and record.state["table"].shape == frame().shape
