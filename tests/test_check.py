"""``experiment check``: every class of problem it reports, a clean pass, and its exit codes.

Each test writes a small project (``tests/_projects.py``) and runs the real ``experiment``
command in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

from _projects import (
    NO_TRACEBACK,
    output,
    run_cli,
    write_source,
    write_tiny,
)


def _project(tmp_path: Path) -> Path:
    return write_tiny(tmp_path / "proj")


def _check(root: Path, *args: str, status: int) -> str:
    result = run_cli(root, "check", *args)
    text = output(result)
    assert result.returncode == status, text
    assert NO_TRACEBACK not in text
    return text


def _line_of(path: Path, fragment: str) -> int:
    """1-based number of the first line of ``path`` containing ``fragment``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} not in {path}")


def test_a_sound_experiment_passes_with_a_summary(tmp_path: Path) -> None:
    """A sound experiment exits 0 and summarises sets, records, stages and artifacts."""
    root = _project(tmp_path)
    text = _check(root, "tiny", "-p", "tiny", "-p", "more", status=0)
    assert "experiment check tiny: ok" in text
    assert "parameter sets: 5 (tiny: 3, more: 2)" in text
    assert "records: 5 (0 aggregates)" in text
    assert "stages: 3 (double, make, square); stage calls: 15" in text
    assert "artifacts: 15 cached outputs, 0 in the cache, 15 to compute" in text
    assert "same run before: unknown (no run registry yet)" in text
    assert not (root / "data").exists() and not (root / "logs").exists()  # nothing written
    assert not (root / "calls.txt").exists()  # no stage body ran


def test_the_summary_knows_the_cache_and_an_identical_earlier_run(tmp_path: Path) -> None:
    """After a run, check sees the cached artifacts and names that run as the same run."""
    root = _project(tmp_path)
    assert run_cli(root, "run", "tiny", "-p", "tiny", "--quiet").returncode == 0
    text = _check(root, "tiny", "-p", "tiny", status=0)
    assert "9 in the cache, 0 to compute" in text
    assert "same run before: yes, tiny_1_" in text and "(complete)" in text
    other = _check(root, "tiny", "-p", "tiny", "--names", "a", status=0)
    assert "same run before: no" in other
    data = json.loads(_check(root, "tiny", "-p", "tiny", "--overwrite-stage", "square",
                             "--json", status=0))
    assert data["ok"] is True
    assert data["summary"]["to_compute"] == 3
    assert data["summary"]["actions"]["overwrite"] == 3


def test_experiment_that_fails_to_import_is_reported_with_its_line(tmp_path: Path) -> None:
    """An experiment raising at import is a problem located at the raising line (exit 1)."""
    root = _project(tmp_path)
    path = write_source(root, "experiments/broken.py", '''
        import curifactory_like as cf

        LIMIT = int("ten")

        def run(param_sets, manager):
            pass
        ''')
    text = _check(root, "broken", "-p", "tiny", status=1)
    assert "[experiment]" in text
    assert f"experiments/broken.py:{_line_of(path, 'int(')}" in text
    assert "ValueError" in text


def test_experiment_without_run_is_reported(tmp_path: Path) -> None:
    """An experiment module without run() is a problem naming the file."""
    root = _project(tmp_path)
    write_source(root, "experiments/norun.py", "X = 1\n")
    text = _check(root, "norun", "-p", "tiny", status=1)
    assert "[experiment] experiments/norun.py" in text and "has no run() function" in text


def test_parameter_file_problems_are_reported_with_their_line(tmp_path: Path) -> None:
    """get_params() raising, and returning a non-list, are problems at their lines."""
    root = _project(tmp_path)
    raising = write_source(root, "params/raising.py", '''
        from params.tiny import Params

        def get_params():
            values = {"n": 1}
            return [Params(name="r", n=values["m"])]
        ''')
    write_source(root, "params/notalist.py", '''
        from params.tiny import Params

        def get_params():
            return Params(name="x")
        ''')
    text = _check(root, "tiny", "-p", "raising", "-p", "notalist", "-p", "tiny", status=1)
    assert text.count("[parameter-file]") == 2
    assert f"params/raising.py:{_line_of(raising, 'values[')}" in text
    assert "KeyError" in text
    assert "params/notalist.py:4" in text and "did not return a list" in text
    assert "parameter sets: 3 (raising: 0, notalist: 0, tiny: 3)" in text


def test_duplicate_names_across_files_are_reported(tmp_path: Path) -> None:
    """Two sets with one name (in different files) are a duplicate-name problem."""
    root = _project(tmp_path)
    write_source(root, "params/clash.py", '''
        from params.tiny import Params

        def get_params():
            return [Params(name="b", n=20)]
        ''')
    text = _check(root, "tiny", "-p", "tiny", "-p", "clash", status=1)
    assert "[duplicate-name] params/clash.py:4" in text
    assert "'b' is used by 2 sets (tiny[1], clash[0])" in text


def test_unhashable_parameter_values_are_reported(tmp_path: Path) -> None:
    """A value whose repr is a memory address is an unhashable problem naming the set."""
    root = _project(tmp_path)
    write_source(root, "params/opaque.py", '''
        from dataclasses import dataclass
        import curifactory_like as cf

        class Thing:
            pass

        @dataclass
        class Params(cf.ExperimentParameters):
            n: int = 1
            thing: object = None

        def get_params():
            return [Params(name="o", thing=Thing())]
        ''')
    text = _check(root, "tiny", "-p", "opaque", status=1)
    assert "[unhashable] params/opaque.py:13" in text
    assert "parameter set 'o' (opaque[0]) cannot be hashed" in text
    assert "memory address" in text


def test_sets_sharing_a_hash_are_a_warning_only(tmp_path: Path) -> None:
    """Two names with one hash give a warning, not a failure."""
    root = _project(tmp_path)
    write_source(root, "params/twins.py", '''
        from params.tiny import Params

        def get_params():
            return [Params(name="one", n=1), Params(name="uno", n=1)]
        ''')
    text = _check(root, "tiny", "-p", "twins", status=0)
    assert "warning [same-hash]" in text and "'one', 'uno' have the same hash" in text


def test_every_bad_stage_declaration_is_reported_at_its_decorator(tmp_path: Path) -> None:
    """All stage declaration problems are listed, each at its @stage line, not just the first."""
    root = _project(tmp_path)
    path = write_source(root, "experiments/decl.py", '''
        import curifactory_like as cf
        from curifactory_like.caching import JsonCacher

        @cf.stage(inputs=["data"], outputs=["x"], cachers=[JsonCacher])
        def nosig(record):
            return 1

        @cf.stage(outputs=["a", "b"], cachers=[JsonCacher])
        def mismatch(record):
            return 1, 2

        def run(param_sets, manager):
            for p in param_sets:
                mismatch(nosig(cf.Record(manager, p)))
        ''')
    text = _check(root, "decl", "-p", "tiny", status=1)
    assert text.count("[stage-declaration]") == 2
    assert f"experiments/decl.py:{_line_of(path, 'def nosig') - 1}" in text
    assert f"experiments/decl.py:{_line_of(path, 'def mismatch') - 1}" in text
    assert "missing '\"data\"'" in text and "number of cachers does not match" in text


def test_cachers_that_cannot_be_built_are_reported(tmp_path: Path) -> None:
    """A cacher class needing arguments, and a path template naming no field, are problems."""
    root = _project(tmp_path)
    path = write_source(root, "experiments/cachers.py", '''
        import curifactory_like as cf
        from curifactory_like.caching import JsonCacher

        class NeedsRoot(JsonCacher):
            def __init__(self, root, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.root = root

        @cf.stage(outputs=["x"], cachers=[NeedsRoot])
        def make(record):
            return 1

        @cf.stage(outputs=["y"], cachers=[JsonCacher(path_override="{params.nothing}.json")])
        def other(record):
            return 2

        def run(param_sets, manager):
            for p in param_sets:
                other(cf.Record(manager, p))
                make(cf.Record(manager, p))
        ''')
    text = _check(root, "cachers", "-p", "tiny", status=1)
    assert f"[cacher] experiments/cachers.py:{_line_of(path, 'cachers=[NeedsRoot]')}" in text
    assert "cacher NeedsRoot cannot be built" in text and "NeedsRoot(...)" in text
    assert text.count("[cacher]") == 2
    assert "nothing" in text


def test_inputs_no_stage_produces_are_reported_once_per_stage(tmp_path: Path) -> None:
    """A stage input nothing outputs is one problem naming the records, at the stage's line."""
    root = _project(tmp_path)
    path = write_source(root, "experiments/gap.py", '''
        import curifactory_like as cf
        from curifactory_like.caching import JsonCacher
        from experiments.tiny import make

        @cf.stage(inputs=["x", "labels"], outputs=["y"], cachers=[JsonCacher])
        def join(record, x, labels):
            return x

        @cf.stage(inputs=["z"], outputs=["w"], cachers=[JsonCacher])
        def given(record, z):
            return z

        def run(param_sets, manager):
            for p in param_sets:
                record = make(cf.Record(manager, p))
                record.state["z"] = 3
                given(join(record))
        ''')
    text = _check(root, "gap", "-p", "tiny", status=1)
    assert text.count("[missing-input]") == 2
    location = f"experiments/gap.py:{_line_of(path, 'def join') - 1}"
    assert f"[missing-input] {location}: stage 'join' needs input 'labels'" in text
    assert "no earlier stage (make) outputs, in Record 0 (a), Record 1 (b), Record 2 (c)" in text
    assert "put 'z' into record.state itself" in text
    assert "records, stages, artifacts: not mapped" in text


def test_run_raising_while_mapping_is_reported_at_its_line(tmp_path: Path) -> None:
    """run() reading state in the map pass fails; check shows the exception and the line."""
    root = _project(tmp_path)
    path = write_source(root, "experiments/reader.py", '''
        import curifactory_like as cf
        from experiments.tiny import make

        def run(param_sets, manager):
            for p in param_sets:
                value = make(cf.Record(manager, p)).state["x"]
                print(value)
        ''')
    text = _check(root, "reader", "-p", "tiny", status=1)
    assert f"[map] experiments/reader.py:{_line_of(path, '.state[')}" in text
    assert "run() failed while mapping" in text


def test_bad_input_exits_2(tmp_path: Path) -> None:
    """Unknown experiment, parameter file, --names or --overwrite-stage exit 2, as for run."""
    root = _project(tmp_path)
    assert "experiment 'nope' not found" in _check(root, "nope", status=2)
    assert "parameter file 'nope' not found" in _check(root, "tiny", "-p", "nope", status=2)
    assert "Paramset name 'zz'" in _check(root, "tiny", "-p", "tiny", "--names", "zz", status=2)
    text = _check(root, "tiny", "-p", "tiny", "--overwrite-stage", "nostage", status=2)
    assert "names no stage" in text


def test_aggregates_are_counted_and_problems_appear_in_json(tmp_path: Path) -> None:
    """Aggregate records are counted in the summary; --json lists problems with locations."""
    root = _project(tmp_path)
    write_source(root, "experiments/agg.py", '''
        import curifactory_like as cf
        from curifactory_like.caching import JsonCacher
        from experiments.tiny import make

        @cf.aggregate(inputs=["x"], outputs=["total"], cachers=[JsonCacher])
        def total(record, records, x):
            return sum(x.values())

        def run(param_sets, manager):
            records = [make(cf.Record(manager, p)) for p in param_sets]
            total(cf.Record(manager, None), records)
        ''')
    text = _check(root, "agg", "-p", "tiny", status=0)
    assert "records: 4 (1 aggregate)" in text
    assert "stages: 2 (make, total); stage calls: 4" in text
    write_source(root, "params/clash.py", '''
        from params.tiny import Params

        def get_params():
            return [Params(name="a", n=9)]
        ''')
    data = json.loads(_check(root, "agg", "-p", "tiny", "-p", "clash", "--json", status=1))
    assert data["ok"] is False
    assert data["problems"] == [
        {
            "kind": "duplicate-name",
            "message": data["problems"][0]["message"],
            "location": "params/clash.py:4",
        }
    ]
    assert "'a' is used by 2 sets" in data["problems"][0]["message"]
