"""The ``experiment`` command, run for real in a subprocess as users run it.

A module-scoped project holds one completed run of the tiny experiment; read-only checks and
inspection commands use it directly, tests that run again work on a copy of it, and tests of
a first run get a fresh project. Stage bodies append to ``calls.txt``, so what a run computed
is counted, not read from logs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from _projects import (
    ARTIFACTS,
    FAILING_EXPERIMENT,
    GOLDEN_HASH_A,
    NO_TRACEBACK,
    STAGES,
    cache_files,
    calls,
    command_env,
    copy_project,
    expected_calls,
    output,
    registry_runs,
    reset_calls,
    run_cli,
    write_source,
    write_tiny,
)

CACHE_NAME = re.compile(
    r"^tiny_(?P<hash>[0-9a-f]{32})_(?P<stage>[a-z]+)_(?P<artifact>[a-z]+)\.json$"
)
PLAN_LINE = re.compile(
    r"^\s+(?P<action>compute|overwrite|load|skip)\s+(?P<stage>\w+) -> (?P<rest>.*)$"
)


@dataclass
class SeededRun:
    """A project after one ``experiment run tiny``, and what that command did."""

    root: Path
    result: subprocess.CompletedProcess[str]

    @property
    def cache(self) -> Path:
        return self.root / "data" / "cache"

    @property
    def reference(self) -> str:
        return registry_runs(self.root)[0]["reference"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> SeededRun:
    """One completed run of the tiny experiment (params/tiny.py, three sets); do not modify."""
    root = write_tiny(tmp_path_factory.mktemp("seeded"))
    return SeededRun(root, run_cli(root, "run", "tiny"))


@pytest.fixture
def fresh(project) -> Path:
    """A project with the tiny experiment that has never been run."""
    return write_tiny(project.root)


@pytest.fixture
def rerun(project, seeded: SeededRun) -> Path:
    """A private copy of the seeded project (one run done), with the call count reset."""
    copy_project(seeded.root, project.root)
    reset_calls(project.root)
    return project.root


def plan_of(stdout: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``(param set, stage) -> (action, rest of line)`` from ``experiment map`` output."""
    plan: dict[tuple[str, str], tuple[str, str]] = {}
    param_set = None
    for line in stdout.splitlines():
        header = re.match(r"^Record \d+, params: (\w+),", line)
        if header:
            param_set = header.group(1)
            continue
        step = PLAN_LINE.match(line)
        if step and param_set is not None:
            plan[(param_set, step.group("stage"))] = (step.group("action"), step.group("rest"))
    return plan


# ------------------------------------------------------------------ a first run


def test_run_exits_zero(seeded: SeededRun):
    """`experiment run tiny` without -p uses params/tiny.py and exits 0."""
    assert seeded.result.returncode == 0, output(seeded.result)


def test_run_computes_every_stage_once(seeded: SeededRun):
    """A first run executes each stage once for each of the three parameter sets."""
    assert calls(seeded.root) == expected_calls(STAGES, "abc")


def test_run_writes_artifacts_named_prefix_hash_stage_artifact(seeded: SeededRun):
    """Cache files are named `<experiment>_<hash>_<stage>_<artifact>.json`, one per set and stage."""
    artifacts = [name for name in cache_files(seeded.cache) if not name.endswith("_metadata.json")]
    matches = [CACHE_NAME.match(name) for name in artifacts]
    assert all(matches), artifacts
    assert Counter((m["stage"], m["artifact"]) for m in matches) == Counter(
        {(stage, artifact): 3 for stage, artifact in ARTIFACTS.items()}
    )
    assert f"tiny_{GOLDEN_HASH_A}_make_x.json" in artifacts


def test_run_writes_metadata_sidecars_with_size_and_checksum(seeded: SeededRun):
    """Every artifact has a `_metadata.json` sidecar holding its true size and sha256 checksum."""
    import hashlib

    artifacts = [name for name in cache_files(seeded.cache) if not name.endswith("_metadata.json")]
    assert len(artifacts) == 9
    for name in artifacts:
        artifact = seeded.cache / name
        sidecar = seeded.cache / name.replace(".json", "_metadata.json")
        metadata = json.loads(sidecar.read_text())
        content = artifact.read_bytes()
        assert metadata["artifact_size"] == len(content)
        assert metadata["artifact_checksum"] == "sha256:" + hashlib.sha256(content).hexdigest()


def test_run_writes_log_named_after_run_reference(seeded: SeededRun):
    """The run's log is `logs/<reference>.log` and records the stages it executed."""
    logs = sorted(p.name for p in (seeded.root / "logs").glob("*.log"))
    assert logs == [f"{seeded.reference}.log"]
    assert "Stage make executing" in (seeded.root / "logs" / logs[0]).read_text()


def test_run_records_complete_row_in_registry(seeded: SeededRun):
    """data/store.db holds one `runs` row for the run: experiment tiny, run 1, status complete."""
    [run] = registry_runs(seeded.root)
    assert (run["experiment_name"], run["run_number"], run["status"]) == ("tiny", 1, "complete")
    assert run["reference"].startswith("tiny_1_")
    assert run["info"]["param_files"] == ["tiny"]


def test_curifactory_form_without_run_subcommand(fresh: Path):
    """`experiment tiny -p tiny` (curifactory's form, no `run`) runs the experiment."""
    result = run_cli(fresh, "tiny", "-p", "tiny", "--quiet")
    assert result.returncode == 0, output(result)
    assert calls(fresh) == expected_calls(STAGES, "abc")


# ------------------------------------------------------------------ caching across runs


def test_second_run_computes_nothing(rerun: Path):
    """Running the same experiment again computes no stage: everything is cached."""
    result = run_cli(rerun, "run", "tiny", "--quiet")
    assert result.returncode == 0, output(result)
    assert calls(rerun) == Counter()


def test_run_numbers_increment(rerun: Path):
    """A second run gets run number 2 and its own log file."""
    run_cli(rerun, "run", "tiny", "--quiet")
    runs = registry_runs(rerun)
    assert [run["run_number"] for run in runs] == [1, 2]
    assert runs[1]["reference"].startswith("tiny_2_")
    assert (rerun / "logs" / f"{runs[1]['reference']}.log").exists()


def test_overwrite_recomputes_every_stage(rerun: Path):
    """`--overwrite` recomputes every stage of every parameter set despite the cache."""
    result = run_cli(rerun, "run", "tiny", "--overwrite", "--quiet")
    assert result.returncode == 0, output(result)
    assert calls(rerun) == expected_calls(STAGES, "abc")


def test_overwrite_stage_recomputes_it_and_downstream_only(rerun: Path):
    """`--overwrite-stage double` recomputes double and square, never make (curifactory #86)."""
    result = run_cli(rerun, "run", "tiny", "--overwrite-stage", "double", "--quiet")
    assert result.returncode == 0, output(result)
    assert calls(rerun) == expected_calls(("double", "square"), "abc")


# ------------------------------------------------------------------ selecting parameter sets


def test_names_selects_parameter_sets(fresh: Path):
    """`--names b` runs only the parameter set called b."""
    run_cli(fresh, "run", "tiny", "--names", "b", "--quiet")
    assert calls(fresh) == expected_calls(STAGES, "b")


def test_indices_range_is_end_exclusive(fresh: Path):
    """`--indices 0-1` selects index 0 only (ranges are end-exclusive)."""
    run_cli(fresh, "run", "tiny", "--indices", "0-1", "--quiet")
    assert calls(fresh) == expected_calls(STAGES, "a")


def test_repeated_params_option_runs_every_file(fresh: Path):
    """`-p tiny -p more` runs the parameter sets of both files."""
    result = run_cli(fresh, "run", "tiny", "-p", "tiny", "-p", "more", "--quiet")
    assert result.returncode == 0, output(result)
    assert calls(fresh) == expected_calls(STAGES, "abcde")


def test_indices_apply_within_each_file(fresh: Path):
    """`--indices 0` with two parameter files selects the first set of each file."""
    run_cli(fresh, "run", "tiny", "-p", "tiny", "-p", "more", "--indices", "0", "--quiet")
    assert calls(fresh) == expected_calls(STAGES, "ad")


def test_global_indices_count_across_files(fresh: Path):
    """`--global-indices 3` with two parameter files selects the fourth set overall."""
    run_cli(fresh, "run", "tiny", "-p", "tiny", "-p", "more", "--global-indices", "3", "--quiet")
    assert calls(fresh) == expected_calls(STAGES, "d")


# ------------------------------------------------------------------ where a run writes


def test_dry_writes_no_cache_registry_or_log(fresh: Path):
    """`--dry` runs the stages but leaves no cache file, registry row or log behind."""
    result = run_cli(fresh, "run", "tiny", "--dry", "--quiet")
    assert result.returncode == 0, output(result)
    assert calls(fresh) == expected_calls(STAGES, "abc")
    assert cache_files(fresh / "data" / "cache") == []
    assert registry_runs(fresh) == []
    assert list(fresh.glob("logs/*.log")) == []


def test_dry_cache_writes_no_cache(fresh: Path):
    """`--dry-cache` runs the stages and writes no cache file."""
    result = run_cli(fresh, "run", "tiny", "--dry-cache", "--quiet")
    assert result.returncode == 0, output(result)
    assert calls(fresh) == expected_calls(STAGES, "abc")
    assert cache_files(fresh / "data" / "cache") == []


def test_prefix_replaces_experiment_name_in_cache_files(fresh: Path):
    """`--prefix pre` names cache files `pre_<hash>_...` instead of `tiny_<hash>_...`."""
    run_cli(fresh, "run", "tiny", "--names", "a", "--prefix", "pre", "--quiet")
    files = cache_files(fresh / "data" / "cache")
    assert f"pre_{GOLDEN_HASH_A}_make_x.json" in files
    assert len(files) == 6
    assert all(name.startswith("pre_") for name in files)


def test_cache_option_moves_the_cache_directory(fresh: Path):
    """`--cache elsewhere` writes the artifacts into ./elsewhere and none into data/cache."""
    run_cli(fresh, "run", "tiny", "--names", "a", "--cache", "elsewhere", "--quiet")
    assert f"tiny_{GOLDEN_HASH_A}_make_x.json" in cache_files(fresh / "elsewhere")
    assert cache_files(fresh / "data" / "cache") == []


def test_no_log_writes_no_log_file(fresh: Path):
    """`--no-log` completes the run without writing logs/<reference>.log."""
    result = run_cli(fresh, "run", "tiny", "--names", "a", "--no-log")
    assert result.returncode == 0, output(result)
    assert list(fresh.glob("logs/*.log")) == []


def test_no_log_keeps_console_log(fresh: Path):
    """`--no-log` only skips the log file; the console still shows the stage log."""
    result = run_cli(fresh, "run", "tiny", "--names", "a", "--no-log")
    assert "Stage make executing" in result.stdout


def test_quiet_prints_no_log_lines(fresh: Path):
    """`--quiet` runs (and computes) without printing log lines to stdout."""
    result = run_cli(fresh, "run", "tiny", "--quiet")
    assert result.returncode == 0, output(result)
    assert calls(fresh) == expected_calls(STAGES, "abc")
    assert "Stage" not in result.stdout
    assert "INFO" not in result.stdout


def test_notes_are_stored_in_the_registry(fresh: Path):
    """`--notes TEXT` is stored with the run's registry row."""
    run_cli(fresh, "run", "tiny", "--names", "a", "--notes", "first try\nwith details", "--quiet")
    [run] = registry_runs(fresh)
    assert run["info"]["notes"] == "first try\nwith details"


def test_progress_shows_every_record_and_the_total(fresh: Path):
    """`--progress` ends with each record's bar at all its stages, and the total at every record."""
    result = run_cli(fresh, "run", "tiny", "--progress")
    assert result.returncode == 0, output(result)
    assert calls(fresh) == expected_calls(STAGES, "abc")
    for index, name in enumerate("abc"):
        assert re.search(rf"^3/3 .*Record {index}, params: {name}, hash: ", result.stdout, re.M)
    assert re.search(r"^3/3 .*Total \(tiny_1_", result.stdout, re.M), result.stdout


def test_progress_with_parallel_counts_the_scheduled_calls(fresh: Path):
    """`--parallel 2 --progress` ends with every computed call counted as done."""
    result = run_cli(fresh, "run", "tiny", "--parallel", "2", "--progress")
    assert result.returncode == 0, output(result)
    assert calls(fresh) == expected_calls(STAGES, "abc")
    assert re.search(r"running 0, done 9, failed 0 .* 9/9", result.stdout), result.stdout


def test_progress_with_parallel_counts_failed_calls(fresh: Path):
    """A failing stage under `--parallel 2 --progress` is counted as failed, not as done."""
    write_source(fresh, "experiments/failing.py", FAILING_EXPERIMENT)
    result = run_cli(fresh, "run", "failing", "-p", "tiny", "--parallel", "2", "--progress")
    assert result.returncode != 0
    assert re.search(r"running 0, done 3, failed 3 .* 6/6", result.stdout), output(result)


# ------------------------------------------------------------------ inspecting without running


def test_map_executes_no_stage(fresh: Path):
    """`experiment map` plans the run without executing a stage body or writing a cache file."""
    result = run_cli(fresh, "map", "tiny")
    assert result.returncode == 0, output(result)
    assert calls(fresh) == Counter()
    assert cache_files(fresh / "data" / "cache") == []


def test_map_shows_compute_for_every_stage_of_a_new_experiment(fresh: Path):
    """Before any run, `experiment map` plans `compute` for every stage of every set."""
    plan = plan_of(run_cli(fresh, "map", "tiny").stdout)
    assert {key: action for key, (action, _) in plan.items()} == {
        (name, stage): "compute" for name in "abc" for stage in STAGES
    }


def test_map_shows_compute_load_and_skip(rerun: Path):
    """With only square's artifact of set a gone, map plans compute square, load double, skip make."""
    for path in (rerun / "data" / "cache").glob(f"tiny_{GOLDEN_HASH_A}_square_*"):
        path.unlink()
    plan = plan_of(run_cli(rerun, "map", "tiny").stdout)
    assert [plan[("a", stage)][0] for stage in STAGES] == ["skip", "load", "compute"]
    assert {plan[(name, stage)][0] for name in "bc" for stage in STAGES} == {"skip"}


def test_map_names_the_run_that_cached_each_artifact(seeded: SeededRun):
    """After a run, map shows for each cached artifact the run reference that produced it."""
    result = run_cli(seeded.root, "map", "tiny")
    plan = plan_of(result.stdout)
    assert len(plan) == 9, result.stdout
    for action, rest in plan.values():
        assert action == "skip"
        assert f"cached by {seeded.reference}" in rest


def test_hashes_prints_hash_and_name_per_set(seeded: SeededRun):
    """`experiment hashes` prints `<hash> <name>` per set, the hashes the cache files use."""
    result = run_cli(seeded.root, "hashes", "tiny")
    assert result.returncode == 0, output(result)
    printed = dict(line.split() for line in result.stdout.splitlines())
    assert list(printed.values()) == ["a", "b", "c"]
    assert printed[GOLDEN_HASH_A] == "a"
    cached = {m["hash"] for m in map(CACHE_NAME.match, cache_files(seeded.cache)) if m}
    assert set(printed) == cached


def test_paths_lists_every_cache_file(seeded: SeededRun):
    """`experiment paths` prints the path of every artifact and sidecar the experiment uses."""
    result = run_cli(seeded.root, "paths", "tiny")
    assert result.returncode == 0, output(result)
    printed = [Path(line) for line in result.stdout.splitlines()]
    assert sorted(path.name for path in printed) == cache_files(seeded.cache)
    assert all((seeded.root / path).is_file() for path in printed)


def test_params_shows_one_set_by_name(seeded: SeededRun):
    """`experiment params tiny b` prints set b's hash and name, then its fields as JSON."""
    result = run_cli(seeded.root, "params", "tiny", "b")
    assert result.returncode == 0, output(result)
    first, _, rest = result.stdout.partition("\n")
    assert first.split()[1] == "b"
    assert re.fullmatch(r"[0-9a-f]{32}", first.split()[0])
    fields = json.loads(rest)
    assert fields["name"] == "b"
    assert str(fields["n"]) == "2"


def test_ls_lists_experiments_and_params_with_docstrings(seeded: SeededRun):
    """`experiment ls` lists experiments and parameter files with their docstring's first line."""
    result = run_cli(seeded.root, "ls")
    assert result.returncode == 0, output(result)
    experiments, _, params = result.stdout.partition("PARAMS:")
    assert "tiny - A tiny three-stage experiment that counts its stage calls." in experiments
    assert "tiny - Three tiny parameter sets." in params
    assert "more - Two more parameter sets." in params


# ------------------------------------------------------------------ a failing run


@pytest.fixture(scope="module")
def failed(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A project after `experiment run failing -p tiny --names a`, whose stage explode raises."""
    root = write_tiny(tmp_path_factory.mktemp("failed"))
    write_source(root, "experiments/failing.py", FAILING_EXPERIMENT)
    return root, run_cli(root, "run", "failing", "-p", "tiny", "--names", "a")


def test_failing_stage_exits_non_zero(failed):
    """A stage that raises makes the command exit non-zero."""
    _, result = failed
    assert result.returncode != 0


def test_failing_stage_marks_registry_row_error(failed):
    """A stage that raises leaves its registry row with status error, the exception and the stage."""
    root, _ = failed
    [run] = registry_runs(root)
    assert run["status"] == "error"
    assert "ValueError" in run["error"] and "kaboom" in run["error"]
    assert "explode" in run["error"]


def test_failing_stage_output_names_stage_and_exception(failed):
    """The console output of a failed run names the failing stage and its exception."""
    _, result = failed
    assert "explode" in output(result)
    assert "ValueError" in output(result) and "kaboom" in output(result)
    assert NO_TRACEBACK not in output(result)


def test_failing_stage_is_named_in_quiet_error_report(fresh: Path):
    """With `--quiet`, the one error line of a failed run still names the failing stage."""
    write_source(fresh, "experiments/failing.py", FAILING_EXPERIMENT)
    result = run_cli(fresh, "run", "failing", "-p", "tiny", "--names", "a", "--quiet")
    assert result.returncode != 0
    assert "explode" in output(result) and "kaboom" in output(result)


# ------------------------------------------------------------------ help


def test_help_lists_the_commands(tmp_path: Path):
    """`experiment --help` exits 0 and lists the subcommands."""
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0, output(result)
    for command in ("run", "map", "hashes", "paths", "params", "ls"):
        assert command in result.stdout


def test_python_m_cli_runs(tmp_path: Path):
    """`python -m curifactory_like.cli --help` works like the `experiment` script."""
    result = subprocess.run(
        [sys.executable, "-m", "curifactory_like.cli", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=command_env(),
        check=False,
    )
    assert result.returncode == 0, output(result)
    assert "experiment" in result.stdout
