"""Map, plan, then execute: what runs, what loads, what is skipped, through run_experiment."""

from __future__ import annotations

from pathlib import Path

import pytest

from curifactory_like.experiment import run_experiment
from curifactory_like.plan import Action

PIPELINE = '''
"""A three-stage chain per record plus an aggregate."""
from dataclasses import dataclass
from pathlib import Path

import curifactory_like as cf
from curifactory_like.caching import JsonCacher, PickleCacher

CALLS = Path("calls.log")
LOADS = Path("loads.log")


def note(name):
    with CALLS.open("a") as out:
        out.write(name + "\\n")


class CountingJson(JsonCacher):
    def load(self):
        with LOADS.open("a") as out:
            out.write(self.name + "\\n")
        return super().load()


@dataclass
class Params(cf.ExperimentParameters):
    x: int = 1


def get_params():
    return [Params(name="a", x=1), Params(name="b", x=2)]


@cf.stage(outputs=["raw"], cachers=[CountingJson])
def load(record):
    note("load")
    return record.params.x


@cf.stage(inputs=["raw"], outputs=[cf.Lazy("feat")], cachers=[PickleCacher])
def featurize(record, raw):
    note("featurize")
    return raw * 10


@cf.stage(inputs=["feat"], outputs=["score"], cachers=[CountingJson])
def score(record, feat):
    note("score")
    return feat + 1


@cf.aggregate(inputs=["score"], outputs=["total"], cachers=[JsonCacher])
def total(record, records, score):
    note("total")
    return sum(score.values())


def run(param_sets, manager):
    records = [score(featurize(load(cf.Record(manager, p)))) for p in param_sets]
    total(cf.Record(manager, None), records)
    return records
'''


def calls(project) -> list[str]:
    path = Path("calls.log")
    lines = path.read_text().split() if path.exists() else []
    path.unlink(missing_ok=True)
    return sorted(lines)


def loads() -> list[str]:
    path = Path("loads.log")
    lines = path.read_text().split() if path.exists() else []
    path.unlink(missing_ok=True)
    return sorted(lines)


@pytest.fixture
def pipeline(project):
    project.experiment("pipe", PIPELINE)
    results, manager = run_experiment("pipe", param_files=["pipe"])
    assert manager.status == "complete"
    assert calls(project) == sorted(["load"] * 2 + ["featurize"] * 2 + ["score"] * 2 + ["total"])
    loads()
    return project


def test_warm_run_executes_and_loads_nothing(pipeline):
    """A fully cached run executes no stage and loads no artifact."""
    _, manager = run_experiment("pipe", param_files=["pipe"])
    assert manager.status == "complete"
    assert calls(pipeline) == []
    assert loads() == []


def test_overwrite_stage_recomputes_downstream_not_upstream(pipeline):
    """--overwrite-stage featurize reruns featurize and everything after it (curifactory #86)."""
    _, manager = run_experiment("pipe", param_files=["pipe"], stage_overwrites=["featurize"])
    assert manager.status == "complete"
    assert calls(pipeline) == sorted(["featurize"] * 2 + ["score"] * 2 + ["total"])


def test_missing_artifacts_recompute_only_what_is_needed(pipeline):
    """With one score and the aggregate gone, only they run; the other score is loaded."""
    sorted(pipeline.cache.glob("pipe_*_score_score.json"))[0].unlink()
    next(pipeline.cache.glob("pipe_*_total_total.json")).unlink()
    _, manager = run_experiment("pipe", param_files=["pipe"])
    assert manager.status == "complete"
    assert calls(pipeline) == ["score", "total"]
    assert loads() == ["score"]


def test_deleted_upstream_artifact_is_not_recomputed_when_not_needed(pipeline):
    """An intermediate artifact nobody needs is not recomputed just because it is gone."""
    for path in pipeline.cache.glob("pipe_*_load_raw.json"):
        path.unlink()
    _, manager = run_experiment("pipe", param_files=["pipe"])
    assert manager.status == "complete"
    assert calls(pipeline) == []


def test_overwrite_recomputes_everything(pipeline):
    """--overwrite recomputes every stage of every record and the aggregate."""
    _, manager = run_experiment("pipe", param_files=["pipe"], overwrite_override=True)
    assert manager.status == "complete"
    assert calls(pipeline) == sorted(["load"] * 2 + ["featurize"] * 2 + ["score"] * 2 + ["total"])


def test_map_only_plans_without_executing(pipeline):
    """map_only returns the planned DAG and runs no stage body."""
    for path in [*pipeline.cache.glob("pipe_*_score_score.json"),
                 *pipeline.cache.glob("pipe_*_total_total.json")]:
        path.unlink()
    dag, manager = run_experiment("pipe", param_files=["pipe"], map_only=True)
    assert calls(pipeline) == []
    actions = {(c.record_index, c.stage_name): dag.plan.decisions[c.key].action for c in dag.calls}
    assert actions[(0, "score")] is Action.COMPUTE
    assert actions[(0, "featurize")] is Action.LOAD
    assert actions[(0, "load")] is Action.SKIP
    reason = dag.plan.decisions[dag.calls[2].key].reason
    assert "artifact missing" in reason


def test_plan_reason_for_upstream_recompute(pipeline):
    """The plan says why a stage downstream of an overwrite recomputes."""
    dag, _ = run_experiment("pipe", param_files=["pipe"], map_only=True, stage_overwrites=["load"])
    decisions = {(c.record_index, c.stage_name): dag.plan.decisions[c.key] for c in dag.calls}
    assert decisions[(0, "load")].action is Action.OVERWRITE
    assert decisions[(0, "featurize")].reason.startswith("upstream artifact recomputed")


def test_identical_calls_run_once(project):
    """Two records with the same parameters compute their shared stage once."""
    project.experiment("twins", PIPELINE.replace(
        'return [Params(name="a", x=1), Params(name="b", x=2)]',
        'return [Params(name="a", x=1), Params(name="a_copy", x=1)]',
    ))
    _, manager = run_experiment("twins", param_files=["twins"])
    assert manager.status == "complete"
    assert calls(project) == ["featurize", "load", "score", "total"]


def test_corrupted_artifact_recomputed_with_warning(pipeline):
    """A cached artifact whose bytes changed is recomputed with a warning naming the file."""
    target = sorted(pipeline.cache.glob("pipe_*_score_score.json"))[0]
    target.write_text("999")
    # rerunning the aggregate reads every score, so the corrupted one must be caught
    with pytest.warns(UserWarning, match=target.name):
        _, manager = run_experiment("pipe", param_files=["pipe"], stage_overwrites=["total"])
    assert manager.status == "complete"
    assert calls(pipeline) == ["score", "total"]
    assert target.read_text().strip() != "999"


def test_failed_stage_marks_run_error_and_keeps_cache(project):
    """A stage that raises ends the run with status error; earlier artifacts stay cached."""
    project.experiment("pipe", PIPELINE.replace('note("score")', 'note("score"); raise ValueError("boom")'))
    results, manager = run_experiment("pipe", param_files=["pipe"])
    assert results is None
    assert manager.status == "error" and "boom" in manager.error
    assert any(name.endswith("_load_raw.json") for name in project.cache_files())
    from curifactory_like.store import RunStore

    with RunStore("data") as store:
        assert store.get_run(manager.get_reference_name())["status"] == "error"


def test_report_plan_lists_the_first_executing_calls_and_counts_them_all(project, monkeypatch):
    """The report's plan section keeps only the rows it shows; its totals count every call."""
    from curifactory_like.explain import explain_plan
    from curifactory_like.reporting import plan_section

    project.experiment("pipe", PIPELINE)
    _, manager = run_experiment("pipe", param_files=["pipe"], dry=True)
    full = explain_plan(manager, manager.dag)
    executing = [c for c in full.calls if c.action == "compute"]
    assert len(executing) == 7
    monkeypatch.setattr(plan_section, "PLAN_ROWS_SHOWN", 3)

    context = plan_section.plan_context(manager)

    assert context is not None
    assert context["executing"] == executing[:3]
    assert context["executing_total"] == 7
    shown = context["explanation"]
    assert (shown.totals, shown.reasons, shown.estimate) == (
        full.totals,
        full.reasons,
        full.estimate,
    )
