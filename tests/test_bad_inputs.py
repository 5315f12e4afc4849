"""Bad inputs: each gets a clear error, a non-zero exit, no traceback, and an intact cache.

Every case starts from a copy of a project in which ``experiment run tiny`` has completed (so
its cache holds nine artifacts), introduces one mistake a user makes (a broken parameter file,
a stage that does not fit its declaration, a bad option, ...), and runs the real ``experiment``
command once. The tests then check that outcome from four sides. The same mistakes are also
driven through the Python API, ``run_experiment``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _projects import (
    FAILING_EXPERIMENT,
    GOLDEN_HASH_A,
    NO_TRACEBACK,
    TINY_EXPERIMENT,
    cache_files,
    cache_snapshot,
    calls,
    copy_project,
    output,
    registry_runs,
    reset_calls,
    run_cli,
    write_source,
    write_tiny,
)

import curifactory_like
from curifactory_like.experiment import run_experiment

UNHASHABLE_PARAMS = '''\
"""A parameter set holding an object whose repr is only its memory address."""

from dataclasses import dataclass

import curifactory_like as cf


class Thing:
    pass


@dataclass
class Params(cf.ExperimentParameters):
    thing: object = None


def get_params():
    return [Params(name="weird", thing=Thing())]
'''

SIGNATURE_LACKS_INPUT = """

@cf.stage(inputs=["z"], outputs=["summary"], cachers=[JsonCacher])
def summarise(record):
    return 1


def run(param_sets, manager):
    for param_set in param_sets:
        summarise(square(double(make(cf.Record(manager, param_set)))))
"""

WRONG_OUTPUT_COUNT = """

@cf.stage(inputs=["z"], outputs=["w", "v"], cachers=[JsonCacher, JsonCacher])
def pair(record, z):
    return z


def run(param_sets, manager):
    for param_set in param_sets:
        pair(square(double(make(cf.Record(manager, param_set)))))
"""

CACHER_CANNOT_WRITE = """

from curifactory_like.caching import PandasCsvCacher


@cf.stage(inputs=["z"], outputs=["table"], cachers=[PandasCsvCacher])
def table(record, z):
    return {"z": z}


def run(param_sets, manager):
    for param_set in param_sets:
        table(square(double(make(cf.Record(manager, param_set)))))
"""


@dataclass(frozen=True)
class Case:
    """One mistake: the files it writes into a good project, the command, what the error says."""

    id: str
    args: tuple[str, ...]
    culprit: tuple[str, ...]
    """Substrings the output must contain: the culprit (file / set / stage) and how to fix it."""
    files: dict[str, str] = field(default_factory=dict)


CASES = [
    Case(
        "no_get_params",
        ("run", "tiny", "-p", "noget"),
        ("noget.py", "no get_params() function", "define `def get_params()"),
        {"params/noget.py": '"""Forgot get_params."""\n\nVALUE = 1\n'},
    ),
    Case(
        "get_params_returns_non_list",
        ("run", "tiny", "-p", "notlist"),
        ("notlist.py", "returned a dict", "return a list of parameter sets"),
        {"params/notlist.py": 'def get_params():\n    return {"a": 1}\n'},
    ),
    Case(
        "get_params_returns_empty_list",
        ("run", "tiny", "-p", "empty"),
        ("empty.py", "returned an empty list", "return at least one parameter set"),
        {"params/empty.py": "def get_params():\n    return []\n"},
    ),
    Case(
        "unknown_names_value",
        ("run", "tiny", "--names", "zzz"),
        ("'zzz'", "parameter file(s) tiny", "known names: a, b, c"),
    ),
    Case(
        "stage_signature_lacks_input",
        ("run", "tiny"),
        ("summarise", '"z"', "add them as parameters of summarise()"),
        {"experiments/tiny.py": TINY_EXPERIMENT + SIGNATURE_LACKS_INPUT},
    ),
    Case(
        "stage_returns_wrong_number_of_outputs",
        ("run", "tiny"),
        ("'pair'", "['w', 'v']", "returned 1 value", "return one value per output"),
        {"experiments/tiny.py": TINY_EXPERIMENT + WRONG_OUTPUT_COUNT},
    ),
    Case(
        "unhashable_parameter",
        ("run", "tiny", "-p", "unhashable"),
        ("'weird'", "'unhashable'", "'thing'", "memory address", "__repr__"),
        {"params/unhashable.py": UNHASHABLE_PARAMS},
    ),
    Case(
        "cacher_cannot_write",
        ("run", "tiny"),
        ("stage 'table'", "PandasCsvCacher", "output 'table'", "PickleCacher"),
        {"experiments/tiny.py": TINY_EXPERIMENT + CACHER_CANNOT_WRITE},
    ),
    Case("unknown_experiment", ("run", "nosuch"), ("nosuch", "experiment ls")),
    Case(
        "bad_index_range",
        ("run", "tiny", "--indices", "5-2"),
        ("--indices", "'5-2'", "A < B"),
    ),
    Case(
        "unknown_overwrite_stage",
        ("run", "tiny", "--overwrite-stage", "nosuchstage"),
        ("'nosuchstage'", "no stage", "double, make, square"),
    ),
    Case(
        "syntax_error_in_parameter_file",
        ("run", "tiny", "-p", "broken"),
        ("broken.py", "SyntaxError", "line 1", "fix the error in that file"),
        {"params/broken.py": "def get_params(:\n    return []\n"},
    ),
    Case(
        "get_params_raises",
        ("run", "tiny", "-p", "raising"),
        ("raising.py:2", "RuntimeError: no params today", "fix it"),
        {"params/raising.py": 'def get_params():\n    raise RuntimeError("no params today")\n'},
    ),
    Case(
        "invalid_config_json",
        ("run", "tiny"),
        ("curifactory_config.json", "not valid JSON", "fix the file"),
        {"curifactory_config.json": "{not json\n"},
    ),
]
CASES_BY_ID = {case.id: case for case in CASES}


@dataclass
class Outcome:
    """A bad case run in a project that had a good run first."""

    case: Case
    root: Path
    result: subprocess.CompletedProcess[str]
    cache_before: dict[str, bytes]
    all_files_before: list[str]
    runs_before: list[dict] = field(default_factory=list)

    @property
    def cache(self) -> Path:
        return self.root / "data" / "cache"


@pytest.fixture(scope="module")
def good_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project after a successful `experiment run tiny` (three sets, nine artifacts)."""
    root = write_tiny(tmp_path_factory.mktemp("good"))
    result = run_cli(root, "run", "tiny", "--quiet")
    assert result.returncode == 0, output(result)
    assert len(cache_files(root / "data" / "cache")) == 18
    return root


def run_bad_case(case: Case, good: Path, root: Path, *extra: str) -> Outcome:
    """Copy the good project into ``root``, snapshot its cache, add the mistake, run it."""
    copy_project(good, root)
    cache = root / "data" / "cache"
    before = cache_snapshot(cache)
    all_before = sorted(p.name for p in cache.iterdir())
    runs_before = registry_runs(root)
    for relative, source in case.files.items():
        write_source(root, relative, source)
    result = run_cli(root, *case.args, *extra)
    return Outcome(case, root, result, before, all_before, runs_before)


@pytest.fixture(scope="module", params=CASES, ids=[case.id for case in CASES])
def outcome(request, good_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The outcome of one bad case, shared by the tests that examine it."""
    case: Case = request.param
    return run_bad_case(case, good_project, tmp_path_factory.mktemp(case.id))


# ------------------------------------------------------------------ every case, four checks


def test_bad_input_exits_non_zero(outcome: Outcome):
    """The command exits with a non-zero status."""
    assert outcome.result.returncode != 0, output(outcome.result)


def test_bad_input_error_names_culprit_and_fix(outcome: Outcome):
    """The error names the culprit (file, parameter set, stage or option) and how to fix it."""
    text = output(outcome.result)
    missing = [part for part in outcome.case.culprit if part not in text]
    assert not missing, text


def test_bad_input_prints_no_traceback(outcome: Outcome):
    """Without --verbose the output holds no Python traceback."""
    assert NO_TRACEBACK not in output(outcome.result)


def test_bad_input_leaves_cached_artifacts_intact(outcome: Outcome):
    """Every artifact and sidecar cached by the earlier good run is still there, byte for byte."""
    after = cache_snapshot(outcome.cache)
    assert sorted(after) == sorted(outcome.cache_before)
    changed = [name for name, data in outcome.cache_before.items() if after[name] != data]
    assert changed == []


def test_bad_input_keeps_registry_rows(outcome: Outcome):
    """Every run recorded before is still in the registry, unchanged; no new run is complete."""
    after = registry_runs(outcome.root)
    assert after[: len(outcome.runs_before)] == outcome.runs_before
    assert all(run["status"] != "complete" for run in after[len(outcome.runs_before) :])


def test_bad_input_adds_no_partial_cache_file(outcome: Outcome):
    """No new, partial or temporary file is left in the cache directory."""
    assert sorted(p.name for p in outcome.cache.iterdir()) == outcome.all_files_before


# ------------------------------------------------------------------ --verbose, and specific wording


@pytest.mark.parametrize("case_id", ["no_get_params", "stage_returns_wrong_number_of_outputs"])
def test_verbose_shows_the_traceback(case_id: str, good_project: Path, project):
    """With --verbose the error comes with its Python traceback."""
    result = run_bad_case(CASES_BY_ID[case_id], good_project, project.root, "--verbose").result
    assert result.returncode != 0
    assert NO_TRACEBACK in output(result)


def test_unknown_experiment_is_reported_as_an_experiment(good_project: Path, project):
    """`experiment run nosuch` says the experiment (not a parameter file) 'nosuch' is unknown."""
    outcome = run_bad_case(CASES_BY_ID["unknown_experiment"], good_project, project.root)
    text = output(outcome.result)
    assert "experiment 'nosuch' not found" in text
    assert "parameter file 'nosuch'" not in text


def test_syntax_error_location_points_at_user_file(good_project: Path, project):
    """The error for a syntax error in a parameter file points at no file of the package itself."""
    outcome = run_bad_case(
        CASES_BY_ID["syntax_error_in_parameter_file"], good_project, project.root
    )
    package_dir = str(Path(curifactory_like.__file__).parent)
    assert package_dir not in output(outcome.result)


# ------------------------------------------------------------------ the Python API


@pytest.fixture
def api_project(project) -> Path:
    """The tiny experiment plus a parameter file without get_params and a failing experiment."""
    write_tiny(project.root)
    project.params("noget", '"""Forgot get_params."""\n\nVALUE = 1\n')
    project.experiment("failing", FAILING_EXPERIMENT)
    return project.root


def test_api_missing_get_params_raises_parameter_file_error(api_project: Path):
    """run_experiment with a parameter file lacking get_params raises ParameterFileError."""
    with pytest.raises(curifactory_like.ParameterFileError, match="noget") as caught:
        run_experiment("tiny", param_files=["noget"])
    assert isinstance(caught.value, curifactory_like.CurifactoryError)


def test_api_unknown_name_raises_parameter_selection_error(api_project: Path):
    """run_experiment with an unknown parameter set name raises ParameterSelectionError."""
    with pytest.raises(curifactory_like.ParameterSelectionError, match="zzz") as caught:
        run_experiment("tiny", param_files=["tiny"], param_set_names=["zzz"])
    assert isinstance(caught.value, curifactory_like.CurifactoryError)


def test_api_parameter_error_is_recorded_as_error(api_project: Path):
    """A run stopped by a parameter file error gets registry status error naming the file."""
    with pytest.raises(curifactory_like.ParameterFileError):
        run_experiment("tiny", param_files=["noget"])
    [run] = registry_runs(api_project)
    assert run["status"] == "error"
    assert "noget" in run["error"]


def test_api_unknown_experiment_raises_experiment_error(api_project: Path):
    """run_experiment of an experiment module that does not exist raises ExperimentError."""
    with pytest.raises(curifactory_like.ExperimentError, match="nosuch"):
        run_experiment("nosuch", param_files=["tiny"])


def test_api_unknown_experiment_leaves_no_incomplete_run(api_project: Path):
    """A run stopped because its experiment does not exist is not left 'incomplete' in the registry."""
    with pytest.raises(curifactory_like.ExperimentError):
        run_experiment("nosuch", param_files=["tiny"])
    assert [
        run["status"] for run in registry_runs(api_project) if run["status"] == "incomplete"
    ] == []


def test_api_failing_stage_returns_none_and_error_status(api_project: Path):
    """A stage that raises makes run_experiment return (None, manager) with status error."""
    results, manager = run_experiment("failing", param_files=["tiny"], param_set_names=["a"])
    assert results is None
    assert manager.status == "error"
    assert "kaboom" in manager.error


def test_api_failing_stage_registry_row_says_error(api_project: Path):
    """A stage that raises leaves the run's registry row with status error and the exception."""
    _, manager = run_experiment("failing", param_files=["tiny"], param_set_names=["a"])
    [run] = registry_runs(api_project)
    assert run["reference"] == manager.get_reference_name()
    assert run["status"] == "error"
    assert "ValueError" in run["error"] and "kaboom" in run["error"]


def test_an_unwritable_sidecar_names_the_output_and_the_artifact_is_recomputed(tmp_path: Path):
    """Something in the way of a sidecar (here a folder at its path) fails the run with a message
    naming the output, its stage and the path; the artifact written without its sidecar is not
    trusted by the next run."""
    root = write_tiny(tmp_path)
    blocked = root / "data" / "cache" / f"tiny_{GOLDEN_HASH_A}_double_y_metadata.json"
    blocked.mkdir(parents=True)

    failed = run_cli(root, "run", "tiny", "-p", "tiny")
    text = output(failed)
    assert failed.returncode != 0
    assert "stage 'double' of" in text and "sidecar of output 'y'" in text, text
    assert blocked.name in text and "nothing else is at that path" in text
    assert NO_TRACEBACK not in text
    assert registry_runs(root)[-1]["status"] == "error"
    assert blocked.with_name(f"tiny_{GOLDEN_HASH_A}_double_y.json").exists()

    blocked.rmdir()
    reset_calls(root)
    rerun = run_cli(root, "run", "tiny", "-p", "tiny")
    assert rerun.returncode == 0, output(rerun)
    assert calls(root)["double a"] == 1, "an artifact without its sidecar was trusted"
    assert json.loads(blocked.read_text())["artifact_checksum"].startswith("sha256:")
    assert registry_runs(root)[-1]["status"] == "complete"
