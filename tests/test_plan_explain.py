"""``experiment plan``: every reason, the code-change policies, --json, --against, the estimate.

Each test drives the real ``experiment`` command on a small project whose first stage calls a
helper two modules away (``helpers.mid`` -> ``helpers.deep``); ``calls.txt`` counts what ran.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests._projects import calls, output, reset_calls, run_cli, write_source

PARAMS = '''\
from dataclasses import dataclass

import curifactory_like as cf


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1


def get_params():
    return [Params(name="a", n=1), Params(name="b", n=2)]
'''

EXPERIMENT = '''\
import curifactory_like as cf
from curifactory_like.caching import JsonCacher

from helpers.mid import prepare


def count(stage, record):
    with open("calls.txt", "a", encoding="utf-8") as out:
        out.write(f"{stage} {record.params.name}\\n")


@cf.stage(outputs=["x"], cachers=[JsonCacher])
def make(record):
    count("make", record)
    return prepare(record.params.n)


@cf.stage(inputs=["x"], outputs=["y"], cachers=[JsonCacher])
def double(record, x):
    count("double", record)
    return x * 2


@cf.stage(inputs=["y"], outputs=["z"], cachers=[JsonCacher], version="1")
def square(record, y):
    count("square", record)
    return y * y


def run(param_sets, manager):
    for param_set in param_sets:
        square(double(make(cf.Record(manager, param_set))))
'''

DEEP = '''\
SCALE = 1


def scale(value):
    return value * SCALE
'''

MID = '''\
from helpers import deep


def prepare(n):
    return deep.scale(n) + 0
'''

ALL_CALLS = {f"{stage} {name}" for stage in ("make", "double", "square") for name in "ab"}


def write_project(root: Path) -> Path:
    write_source(root, "experiments/__init__.py", "")
    write_source(root, "params/__init__.py", "")
    write_source(root, "helpers/__init__.py", "")
    write_source(root, "experiments/plex.py", EXPERIMENT)
    write_source(root, "params/plex.py", PARAMS)
    write_source(root, "helpers/deep.py", DEEP)
    write_source(root, "helpers/mid.py", MID)
    return root


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    return write_project(tmp_path / "proj")


@pytest.fixture
def seeded(fresh: Path) -> Path:
    result = run_cli(fresh, "run", "plex", "--quiet")
    assert result.returncode == 0, output(result)
    assert set(calls(fresh)) == ALL_CALLS
    reset_calls(fresh)
    return fresh


def plan(root: Path, *args: str) -> dict[str, Any]:
    result = run_cli(root, "plan", "plex", "--json", *args)
    assert result.returncode == 0, output(result)
    return json.loads(result.stdout)


def by_call(planned: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{c['stage']} {c['param_set']}": c for c in planned["calls"]}


def references(root: Path) -> list[str]:
    with sqlite3.connect(root / "data" / "store.db") as db:
        return [r for (r,) in db.execute("SELECT reference FROM runs ORDER BY id")]


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


# ---------------------------------------------------------------------------- shape and reasons


def test_plan_json_shape_on_a_fresh_project_and_nothing_is_written(fresh):
    planned = plan(fresh)
    assert set(planned) == {
        "experiment", "code_changes", "calls", "totals", "reasons", "estimate", "against"
    }
    assert planned["experiment"] == "plex" and planned["code_changes"] == "rerun"
    assert planned["totals"] == {"compute": 6, "overwrite": 0, "load": 0, "skip": 0}
    assert planned["reasons"] == {"missing": 6}
    call = by_call(planned)["make a"]
    assert set(call) >= {
        "record", "param_set", "param_hash", "stage", "position", "action", "kind", "reason",
        "artifacts", "parameter_changes", "code", "estimate_seconds", "against",
    }
    assert call["reason"].startswith("artifact missing: ")
    assert call["artifacts"][0].endswith("_make_x.json")
    assert planned["estimate"]["executing_calls"] == 6
    assert planned["estimate"]["calls_without_history"] == 6
    assert not calls(fresh)
    assert not (fresh / "data").exists()


def test_plan_text_after_a_run_says_everything_is_cached(seeded):
    result = run_cli(seeded, "plan", "plex")
    assert result.returncode == 0, output(result)
    assert "Totals: 0 compute, 0 overwrite, 0 load, 6 skip" in result.stdout
    assert "Reasons: 6 cached" in result.stdout
    assert "Estimated run time: nothing to execute" in result.stdout
    assert not calls(seeded)


def test_parameter_changed_names_field_and_old_and_new_value(seeded):
    edit(seeded, "params/plex.py", 'name="b", n=2', 'name="b", n=7')
    planned = by_call(plan(seeded))
    for stage in ("make", "double", "square"):
        call = planned[f"{stage} b"]
        assert call["action"] == "compute" and call["kind"] == "parameter_changed"
        assert call["parameter_changes"] == [{"field": "n", "old": "2", "new": "7"}]
        assert "parameter changed: n 2 -> 7" in call["reason"]
        assert planned[f"{stage} a"]["action"] == "skip"


def test_parameter_changed_against_a_set_registered_by_another_experiment(seeded):
    """Without a run of its own to compare with, an experiment's plan compares each parameter
    set with the registered set of that name, for every call of the record."""
    write_source(seeded, "experiments/plex2.py", EXPERIMENT)
    edit(seeded, "params/plex.py", 'name="b", n=2', 'name="b", n=7')
    result = run_cli(seeded, "plan", "plex2", "-p", "plex", "--json")
    assert result.returncode == 0, output(result)
    planned = by_call(json.loads(result.stdout))
    for stage in ("make", "double", "square"):
        changed = planned[f"{stage} b"]
        assert changed["kind"] == "parameter_changed", changed
        assert changed["parameter_changes"] == [{"field": "n", "old": "2", "new": "7"}]
        assert "since the registered parameter set" in changed["reason"]
        assert planned[f"{stage} a"]["kind"] == "missing"
        assert planned[f"{stage} a"]["parameter_changes"] == []


def test_a_missing_artifact_of_unchanged_parameters_is_not_a_parameter_change(seeded):
    for path in (seeded / "data" / "cache").glob("*_square_z.json"):
        path.unlink()
    planned = by_call(plan(seeded))
    assert planned["square a"]["kind"] == "missing"
    assert planned["square a"]["parameter_changes"] == []
    assert planned["double a"]["action"] == "load"


def test_overwrite_requested_and_upstream_recomputed(seeded):
    planned = by_call(plan(seeded, "--overwrite-stage", "double"))
    assert planned["double a"]["action"] == "overwrite"
    assert planned["double a"]["kind"] == "overwrite"
    assert planned["square a"]["kind"] == "upstream"
    assert "upstream artifact recomputed: stage double" in planned["square a"]["reason"]
    assert planned["make a"]["action"] == "load"


def test_corrupted_cached_artifact(seeded):
    (target,) = [p for p in (seeded / "data" / "cache").glob("*_square_z.json")
                 if "a" in json.loads(p.with_name(p.name.replace(".json", "_metadata.json"))
                                      .read_text())["params_name"]]
    target.write_text(target.read_text() + "   ")
    planned = by_call(plan(seeded))
    assert planned["square a"]["kind"] == "corrupted"
    assert planned["square a"]["reason"].startswith("cached artifact corrupted")
    assert planned["square b"]["action"] == "skip"


# ---------------------------------------------------------------------------- code changes


def test_helper_two_modules_away_changed_reruns_the_stage_and_its_dependents(seeded):
    edit(seeded, "helpers/deep.py", "return value * SCALE", "return value * SCALE + 1")
    planned = by_call(plan(seeded))
    assert planned["make a"]["kind"] == "code_changed"
    assert planned["make a"]["reason"] == "stage code changed (function helpers.deep.scale)"
    assert planned["make a"]["code"] == "changed"
    assert planned["double b"]["kind"] == "upstream"
    assert planned["square b"]["kind"] == "upstream"
    result = run_cli(seeded, "run", "plex", "--quiet")
    assert result.returncode == 0, output(result)
    assert set(calls(seeded)) == ALL_CALLS
    assert plan(seeded)["totals"]["skip"] == 6  # the new sidecars carry the new fingerprint


def test_cosmetic_helper_edit_recomputes_nothing(seeded):
    edit(seeded, "helpers/deep.py", "def scale(value):\n",
         'def scale(value):\n    """Scale a value."""  # documented now\n\n')
    planned = plan(seeded)
    assert planned["totals"]["skip"] == 6
    assert {c["code"] for c in planned["calls"]} == {"same"}
    run_cli(seeded, "run", "plex", "--quiet")
    assert not calls(seeded)


def test_changed_constant_is_named(seeded):
    edit(seeded, "helpers/deep.py", "SCALE = 1", "SCALE = 2")
    planned = by_call(plan(seeded))
    assert planned["make a"]["reason"] == "stage code changed (constant helpers.deep.SCALE)"


def test_warn_policy_keeps_the_cache_and_warns(seeded):
    edit(seeded, "helpers/mid.py", "+ 0", "+ 5")
    planned = by_call(plan(seeded, "--code-changes", "warn"))
    assert planned["make a"]["action"] == "skip"
    assert "code_changes=warn" in planned["make a"]["reason"]
    assert "function helpers.mid.prepare" in planned["make a"]["reason"]
    result = run_cli(seeded, "run", "plex", "--code-changes", "warn", "--plain")
    assert result.returncode == 0, output(result)
    assert not calls(seeded)
    assert "code_changes=warn" in output(result)


def test_ignore_policy_from_the_config_file(seeded):
    (seeded / "curifactory_config.json").write_text(json.dumps({"code_changes": "ignore"}))
    edit(seeded, "helpers/mid.py", "+ 0", "+ 5")
    planned = plan(seeded)
    assert planned["code_changes"] == "ignore"
    assert planned["totals"]["skip"] == 6
    result = run_cli(seeded, "run", "plex", "--plain")
    assert not calls(seeded)
    assert "code changed" not in output(result)
    # the command line overrides the configuration
    assert by_call(plan(seeded, "--code-changes", "rerun"))["make a"]["kind"] == "code_changed"


def test_invalid_policy_in_config_is_bad_input(seeded):
    (seeded / "curifactory_config.json").write_text(json.dumps({"code_changes": "often"}))
    result = run_cli(seeded, "plan", "plex")
    assert result.returncode == 2
    assert "code_changes" in output(result) and "rerun, warn, ignore" in output(result)
    assert "Traceback" not in output(result)


def test_version_pin_ignores_edits_until_bumped(seeded):
    edit(seeded, "experiments/plex.py", "return y * y", "return y * y * 1")
    assert plan(seeded)["totals"]["skip"] == 6
    edit(seeded, "experiments/plex.py", 'version="1"', 'version="2"')
    planned = by_call(plan(seeded))
    assert planned["square a"]["reason"] == "stage code changed (version '1' -> '2')"
    assert planned["double a"]["action"] == "load"  # square reads it
    assert planned["make a"]["action"] == "skip"
    run_cli(seeded, "run", "plex", "--quiet")
    assert set(calls(seeded)) == {"square a", "square b"}


def test_artifacts_cached_before_fingerprints_are_loaded_not_recomputed(seeded):
    for sidecar in (seeded / "data" / "cache").glob("*_metadata.json"):
        metadata = json.loads(sidecar.read_text())
        for key in ("code_fingerprint", "code_parts", "code_version", "library_versions"):
            metadata.pop(key)
        sidecar.write_text(json.dumps(metadata))
    edit(seeded, "helpers/deep.py", "return value * SCALE", "return value * SCALE + 1")
    planned = plan(seeded)
    assert planned["totals"]["skip"] == 6
    assert {c["code"] for c in planned["calls"]} == {"unknown"}
    run_cli(seeded, "run", "plex", "--quiet")
    assert not calls(seeded)


def test_no_dag_run_checks_the_code_of_each_stage(seeded):
    edit(seeded, "helpers/deep.py", "return value * SCALE", "return value * SCALE + 1")
    result = run_cli(seeded, "run", "plex", "--no-dag", "--quiet")
    assert result.returncode == 0, output(result)
    assert {"make a", "make b"} <= set(calls(seeded))


def test_sidecars_and_run_info_record_fingerprints_and_library_versions(seeded):
    sidecar = next((seeded / "data" / "cache").glob("*_make_x_metadata.json"))
    metadata = json.loads(sidecar.read_text())
    assert set(metadata["code_parts"]) == {
        "function:experiments.plex.make", "function:experiments.plex.count",
        "function:helpers.mid.prepare", "function:helpers.deep.scale",
        "constant:helpers.deep.SCALE",
    }
    assert metadata["code_version"] is None
    with sqlite3.connect(seeded / "data" / "store.db") as db:
        (info,) = db.execute("SELECT info FROM runs").fetchone()
    code = json.loads(info)["code"]
    assert code["make"]["fingerprint"] == metadata["code_fingerprint"]
    assert code["square"]["version"] == "1"


# ---------------------------------------------------------------------------- against, estimate


def test_against_an_earlier_run(seeded):
    (first,) = references(seeded)
    edit(seeded, "params/plex.py", 'name="b", n=2', 'name="b", n=7')
    edit(seeded, "helpers/deep.py", "SCALE = 1", "SCALE = 3")
    assert run_cli(seeded, "run", "plex", "--quiet").returncode == 0
    planned = plan(seeded, "--against", first)
    assert planned["totals"]["skip"] == 6  # everything is cached now
    assert planned["against"]["reference"] == first
    assert planned["against"]["code_recorded"] is True
    calls_now = by_call(planned)
    assert calls_now["make b"]["against"]["state"] == "finished"
    assert calls_now["make b"]["against"]["parameter_changes"] == [
        {"field": "n", "old": "2", "new": "7"}
    ]
    assert calls_now["make a"]["against"]["parameter_changes"] == []
    assert calls_now["make a"]["against"]["code_change"] == (
        "stage code changed (constant helpers.deep.SCALE)"
    )
    assert calls_now["double a"]["against"]["code_change"] is None
    text = run_cli(seeded, "plan", "plex", "--against", first)
    assert f"Compared with run {first}" in text.stdout
    assert "parameters changed: n 2 -> 7" in text.stdout


def test_against_an_unknown_run_is_bad_input(seeded):
    result = run_cli(seeded, "plan", "plex", "--against", "plex_99_nope")
    assert result.returncode == 2
    assert "no such run" in output(result) and "experiment runs" in output(result)
    assert "Traceback" not in output(result)


def test_against_accepts_a_unique_prefix_and_refuses_another_experiments_run(seeded):
    (first,) = references(seeded)
    assert plan(seeded, "--against", "plex_1")["against"]["reference"] == first
    write_source(seeded, "experiments/other.py", EXPERIMENT)
    assert run_cli(seeded, "run", "other", "-p", "plex", "--quiet").returncode == 0
    other = references(seeded)[-1]
    result = run_cli(seeded, "plan", "plex", "--against", other)
    assert result.returncode == 2
    assert "run of experiment 'other', not 'plex'" in output(result)


def test_estimate_sums_the_durations_the_registry_recorded(seeded):
    with sqlite3.connect(seeded / "data" / "store.db") as db:
        recorded = {
            (record, stage): seconds
            for record, stage, seconds in db.execute(
                "SELECT record, stage, seconds FROM stage_calls WHERE state = 'finished'"
            )
        }
    assert len(recorded) == 6
    planned = plan(seeded, "--overwrite")
    assert planned["estimate"]["calls_with_history"] == 6
    assert planned["estimate"]["seconds"] == pytest.approx(sum(recorded.values()), abs=1e-3)
    for call in planned["calls"]:
        assert call["estimate_seconds"] == pytest.approx(recorded[(call["record"], call["stage"])])


def test_run_report_has_the_plan_section(seeded):
    edit(seeded, "params/plex.py", 'name="b", n=2', 'name="b", n=7')
    assert run_cli(seeded, "run", "plex", "--quiet").returncode == 0
    reference = references(seeded)[-1]
    html = (seeded / "reports" / reference / "index.html").read_text()
    section = html[html.index('<section id="plan">'):]
    section = section[: section.index("</section>")]
    assert "3 compute" in section and "3 skip" in section
    assert "3 parameter changed" in section
    assert "<code>n</code>: 2 &rarr; 7" in section
    assert "Estimated stage time from earlier runs" in section


def test_map_command_still_shows_code_change_reasons(seeded):
    edit(seeded, "helpers/deep.py", "SCALE = 1", "SCALE = 2")
    result = run_cli(seeded, "map", "plex")
    assert result.returncode == 0, output(result)
    assert "stage code changed (constant helpers.deep.SCALE)" in result.stdout


AGGREGATE_EXPERIMENT = '''\
import curifactory_like as cf
from curifactory_like.caching import JsonCacher

from experiments.plex import count, make


@cf.aggregate(inputs=["x"], outputs=["total"], cachers=[JsonCacher])
def total(record, records, x):
    with open("calls.txt", "a", encoding="utf-8") as out:
        out.write("total\\n")
    return sum(x.values())


def run(param_sets, manager):
    records = [make(cf.Record(manager, param_set)) for param_set in param_sets]
    total(cf.Record(manager, None), records)
'''


def test_code_changes_reach_aggregates(fresh):
    write_source(fresh, "experiments/plexagg.py", AGGREGATE_EXPERIMENT)
    assert run_cli(fresh, "run", "plexagg", "-p", "plex", "--quiet").returncode == 0
    reset_calls(fresh)
    edit(fresh, "helpers/deep.py", "SCALE = 1", "SCALE = 2")
    result = run_cli(fresh, "plan", "plexagg", "-p", "plex", "--json")
    planned = {c["stage"] + " " + str(c["param_set"]): c for c in json.loads(result.stdout)["calls"]}
    assert planned["make a"]["kind"] == "code_changed"
    assert planned["total None"]["kind"] == "upstream"
    assert run_cli(fresh, "run", "plexagg", "-p", "plex", "--quiet").returncode == 0
    assert set(calls(fresh)) == {"make a", "make b", "total"}
    reset_calls(fresh)
    edit(fresh, "experiments/plexagg.py", "sum(x.values())", "sum(x.values()) + 1")
    result = run_cli(fresh, "plan", "plexagg", "-p", "plex", "--json")
    planned = {c["stage"] + " " + str(c["param_set"]): c for c in json.loads(result.stdout)["calls"]}
    assert planned["total None"]["reason"] == (
        "stage code changed (function experiments.plexagg.total)"
    )
    assert planned["make a"]["action"] == "load"
