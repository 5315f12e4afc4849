"""Stages and aggregates called directly with a live manager (notebook / script use)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import curifactory_like as cf
from curifactory_like.caching import JsonCacher, Lazy, PickleCacher


@dataclass
class P(cf.ExperimentParameters):
    x: int = 1


@pytest.fixture
def manager(project):
    return cf.ArtifactManager("live", suppress_live_log=True)


def test_stage_output_stored_in_state(manager):
    """A stage's return value lands in the record state under its output name."""

    @cf.stage(outputs=["y"])
    def double(record):
        return record.params.x * 2

    record = double(cf.Record(manager, P(x=4)))
    assert record.state["y"] == 8


def test_cached_stage_not_executed_twice(manager):
    """With a cacher, a second call for the same parameters loads instead of running."""
    calls = []

    @cf.stage(outputs=["y"], cachers=[JsonCacher])
    def double(record):
        calls.append(1)
        return record.params.x * 2

    double(cf.Record(manager, P(x=4)))
    record = double(cf.Record(manager, P(x=4)))
    assert record.state["y"] == 8
    assert len(calls) == 1


def test_different_parameters_not_shared(manager):
    """Different parameter values get different cache entries."""
    calls = []

    @cf.stage(outputs=["y"], cachers=[JsonCacher])
    def double(record):
        calls.append(1)
        return record.params.x * 2

    assert double(cf.Record(manager, P(x=1))).state["y"] == 2
    assert double(cf.Record(manager, P(x=2))).state["y"] == 4
    assert len(calls) == 2


def test_input_signature_error_names_stage_and_input(manager):
    """A declared input missing from the signature raises InputSignatureError naming both."""

    @cf.stage(inputs=["data"], outputs=["y"])
    def uses_data(record, other):
        return other

    record = cf.Record(manager, P())
    record.state["data"] = 1
    with pytest.raises(cf.InputSignatureError, match=r"uses_data.*\"data\""):
        uses_data(record)


def test_wrong_output_count_names_stage(manager):
    """Returning fewer values than outputs raises OutputSignatureError naming the stage."""

    @cf.stage(outputs=["a", "b"])
    def one_value(record):
        return 1

    with pytest.raises(cf.OutputSignatureError, match="one_value"):
        one_value(cf.Record(manager, P()))


def test_missing_input_is_a_key_error_naming_it(manager):
    """An input nobody produced raises a KeyError (MissingInputError) naming stage and input."""

    @cf.stage(inputs=["data"], outputs=["y"])
    def uses_data(record, data):
        return data

    with pytest.raises(KeyError, match="uses_data.*data"):
        uses_data(cf.Record(manager, P()))


def test_cachers_count_mismatch(manager):
    """One cacher for two outputs raises CachersMismatchError."""

    @cf.stage(outputs=["a", "b"], cachers=[JsonCacher])
    def two(record):
        return 1, 2

    with pytest.raises(cf.CachersMismatchError):
        two(cf.Record(manager, P()))


def test_empty_cachers_list_rejected(manager):
    """cachers=[] raises EmptyCachersError."""

    @cf.stage(outputs=[], cachers=[])
    def nothing(record):
        return None

    with pytest.raises(cf.EmptyCachersError):
        nothing(cf.Record(manager, P()))


def test_lazy_without_cacher_rejected(manager):
    """A Lazy output without a cacher is an OutputSignatureError."""

    @cf.stage(outputs=[Lazy("big")])
    def big(record):
        return [1]

    with pytest.raises(cf.OutputSignatureError):
        big(cf.Record(manager, P()))


def test_lazy_state_holds_handle_and_loads_on_read(manager):
    """A Lazy output is a handle in state and is loaded when read."""

    @cf.stage(outputs=[Lazy("big")], cachers=[PickleCacher])
    def big(record):
        return list(range(record.params.x))

    record = big(cf.Record(manager, P(x=3)))
    record.state.resolve = False
    assert isinstance(record.state["big"], Lazy)
    record.state.resolve = True
    assert record.state["big"] == [0, 1, 2]


def test_aggregate_over_lazy_outputs_sees_each_records_value(manager):
    """An aggregate over a Lazy output of three records sees three values (curifactory: one)."""

    @cf.stage(outputs=[Lazy("value")], cachers=[PickleCacher])
    def make(record):
        return record.params.x * 10

    @cf.aggregate(inputs=["value"], outputs=["all"])
    def collect(record, records, value):
        return sorted(value.values())

    records = [make(cf.Record(manager, P(name=f"p{i}", x=i))) for i in range(3)]
    aggregate = collect(cf.Record(manager, None), records)
    assert aggregate.state["all"] == [0, 10, 20]


def test_aggregate_defaults_to_all_other_records(manager):
    """Without an explicit list an aggregate runs over every other record of the manager."""

    @cf.stage(outputs=["value"])
    def make(record):
        return record.params.x

    @cf.aggregate(inputs=["value"], outputs=["total"])
    def total(record, records, value):
        return sum(value.values())

    for i in range(1, 4):
        make(cf.Record(manager, P(name=f"p{i}", x=i)))
    assert total(cf.Record(manager, None)).state["total"] == 6


def test_make_copy_shares_state_snapshot(manager):
    """A copied record starts with a deep copy of the state and its own parameters."""

    @cf.stage(outputs=["items"])
    def make(record):
        return [1, 2]

    source = make(cf.Record(manager, P(name="a")))
    copy = source.make_copy(P(name="b", x=2))
    copy.state["items"].append(3)
    assert source.state["items"] == [1, 2]
    assert copy.params.name == "b" and copy.input_records == [source]


def test_procedure_runs_stages_in_order(manager):
    """A Procedure applies its stages in order on a new record per parameter set."""

    @cf.stage(outputs=["a"])
    def first(record):
        return 1

    @cf.stage(inputs=["a"], outputs=["b"])
    def second(record, a):
        return a + 1

    record = cf.Procedure([first, second], manager).run(P())
    assert record.state["b"] == 2


def test_procedure_without_manager_errors():
    """Running a Procedure without any manager raises NoArtifactManagerError."""
    with pytest.raises(cf.NoArtifactManagerError):
        cf.Procedure([]).run(P())


def test_report_qualified_name(manager):
    """record.report() names reportables [(Aggregate)_][params name_]stage_name."""
    from curifactory_like.reporting import JsonReporter

    @cf.stage()
    def reporting_stage(record):
        record.report(JsonReporter({"a": 1}, name="metrics"))

    reporting_stage(cf.Record(manager, P(name="pset")))
    assert manager.reportables[-1].qualified_name == "pset_reporting_stage_metrics"
