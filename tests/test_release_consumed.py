"""An ``experiment`` command run gives back the memory of outputs no later call reads: their
state entries become handles on the cache files, read back (verified) when accessed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curifactory_like import gcpolicy
from curifactory_like.experiment import run_experiment
from curifactory_like.record import CachedValue

PIPELINE = '''
from dataclasses import dataclass
from pathlib import Path

import curifactory_like as cf
from curifactory_like.caching import JsonCacher, PickleCacher


class CountingPickle(PickleCacher):
    def load(self):
        with Path("loads.log").open("a") as out:
            out.write(self.name + "\\n")
        return super().load()


@dataclass
class Params(cf.ExperimentParameters):
    x: int = 1


def get_params():
    return [Params(name="a", x=1), Params(name="b", x=2)]


@cf.stage(outputs=["raw"], cachers=[JsonCacher])
def load(record):
    return {"x": record.params.x}


@cf.stage(inputs=["raw"], outputs=["doubled"], cachers=[CountingPickle])
def double(record, raw):
    return {"x": raw["x"] * 2}


@cf.stage(inputs=["raw"], outputs=["memo"])
def remember(record, raw):
    return ["kept", raw["x"]]


@cf.stage(inputs=["raw"], outputs=["raw"], cachers=[JsonCacher])
def refine(record, raw):
    return {"x": raw["x"] + 100}


@cf.aggregate(inputs=["doubled"], outputs=["total"], cachers=[JsonCacher])
def total(record, records, doubled):
    return sum(value["x"] for value in doubled.values())


def run(param_sets, manager):
    records = []
    for p in param_sets:
        record = cf.Record(manager, p)
        refine(remember(double(load(record))))
        records.append(record)
    total(cf.Record(manager, None), records)
    if manager.map_mode:  # nothing is in state while mapping
        return records
    with Path("seen.txt").open("w") as out:  # run() reads state after the stages are done
        for record in records:
            out.write(f"{record.params.name} {record.state['doubled']['x']}\\n")
    return records
'''


def _records(manager):
    return [r for r in manager.records if r.params is not None]


@pytest.fixture
def pipeline(project):
    project.experiment("rel", PIPELINE)
    return project


def test_command_runs_leave_consumed_outputs_on_disk(pipeline):
    with gcpolicy.batch_mode():
        _, manager = run_experiment("rel", param_files=["rel"])
    assert manager.status == "complete"
    # run() read "doubled" after the aggregate, its last reader: both came back from disk
    assert Path("loads.log").read_text().split() == ["doubled", "doubled"]
    assert Path("seen.txt").read_text() == "a 2\nb 4\n"
    a, b = _records(manager)
    for record, x in ((a, 1), (b, 2)):
        assert record.state["doubled"] == {"x": 2 * x}
        # "raw" was written twice; the handle is on refine's file, not load's
        assert isinstance(record.state.raw("raw"), CachedValue)
        assert record.state["raw"] == {"x": x + 100}
        assert record.state.raw("memo") == ["kept", x]  # no cacher: stays in memory
    aggregate = next(r for r in manager.records if r.params is None)
    assert aggregate.state["total"] == 6


def test_results_match_a_run_that_keeps_everything(pipeline):
    _, kept = run_experiment("rel", param_files=["rel"])
    kept_seen = Path("seen.txt").read_text()
    assert not Path("loads.log").exists()  # outside a command run, values stay in memory
    assert not isinstance(_records(kept)[0].state.raw("raw"), CachedValue)
    shutil.rmtree(pipeline.cache)
    with gcpolicy.batch_mode():
        _, released = run_experiment("rel", param_files=["rel"])
    assert Path("seen.txt").read_text() == kept_seen
    for before, after in zip(_records(kept), _records(released), strict=True):
        for name in ("raw", "doubled", "memo"):
            assert before.state[name] == after.state[name]


def test_a_later_reader_still_gets_the_value(pipeline):
    """Partly cached: the stages that run still receive what earlier calls produced."""
    with gcpolicy.batch_mode():
        run_experiment("rel", param_files=["rel"])
    for path in pipeline.cache.glob("rel_*_total_total*"):
        path.unlink()
    with gcpolicy.batch_mode():
        _, manager = run_experiment("rel", param_files=["rel"])
    assert manager.status == "complete"
    aggregate = next(r for r in manager.records if r.params is None)
    assert aggregate.state["total"] == 6
