"""One contract for every executor: same artifacts, same registry, each stage run exactly once."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from _projects import STAGES, cache_files, expected_calls, output, run_cli, write_tiny
from _projects import calls as tiny_calls

from curifactory_like.experiment import run_experiment

EXPERIMENT = '''
"""Chains, a diamond, a lazy output, an output without cacher, and an aggregate."""
import os
import time
from dataclasses import dataclass
from pathlib import Path

import curifactory_like as cf
from curifactory_like.caching import JsonCacher, PickleCacher


def note(name, record):
    with open(os.path.join("calls", f"{name}-{record.params.name if record.params else 'agg'}-{os.getpid()}-{time.time_ns()}"), "w"):
        pass


@dataclass
class Params(cf.ExperimentParameters):
    x: int = 1
    fail: bool = False
    die: bool = False


def get_params():
    return [Params(name=f"p{i}", x=i) for i in range(4)]


@cf.stage(outputs=["base"], cachers=[JsonCacher])
def base(record):
    note("base", record)
    if record.params.die:
        os.kill(os.getpid(), 9)
    return record.params.x


@cf.stage(inputs=["base"], outputs=[cf.Lazy("left")], cachers=[PickleCacher])
def left(record, base):
    note("left", record)
    if record.params.fail:
        raise ValueError("left exploded")
    return base * 10


@cf.stage(inputs=["base"], outputs=["right"])
def right(record, base):
    note("right", record)
    return base + 100


@cf.stage(inputs=["left", "right"], outputs=["joined"], cachers=[JsonCacher])
def joined(record, left, right):
    note("joined", record)
    return left + right


@cf.aggregate(inputs=["joined"], outputs=["total"], cachers=[JsonCacher])
def total(record, records, joined):
    note("total", record)
    return sum(joined.values())


def run(param_sets, manager):
    records = [joined(right(left(base(cf.Record(manager, p))))) for p in param_sets]
    return total(cf.Record(manager, None), records)
'''

EXECUTORS = {
    "serial": {},
    "processes": {"parallel": 2},
    "dask-local": {"dask": "local:2"},
}


def calls() -> list[str]:
    names = sorted(name.split("-")[0] + "-" + name.split("-")[1] for name in os.listdir("calls"))
    for name in os.listdir("calls"):
        os.remove(os.path.join("calls", name))
    return names


def cache_contents(project) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(project.cache.iterdir())
        if p.is_file() and not p.name.endswith("_metadata.json") and not p.name.startswith(".")
    }


def registry_params() -> list[tuple]:
    with sqlite3.connect("data/store.db") as connection:
        tables = {r[0] for r in connection.execute("select name from sqlite_master")}
        table = "param_sets" if "param_sets" in tables else None
        if table is None:
            return []
        return sorted(connection.execute(f"select hash, name from {table}").fetchall())


def run(executor: str, **options):
    if executor == "dask-local":
        pytest.importorskip("distributed")
    return run_experiment("graph", param_files=["graph"], report=False, **EXECUTORS[executor],
                          **options)


@pytest.fixture
def graph(project):
    project.experiment("graph", EXPERIMENT)
    os.makedirs("calls")
    return project


EXPECTED_CALLS = sorted(
    [f"{stage}-p{i}" for stage in ("base", "left", "right", "joined") for i in range(4)]
    + ["total-agg"]
)


@pytest.mark.parametrize("executor", list(EXECUTORS))
def test_each_stage_runs_exactly_once(graph, executor):
    """A cold run executes every stage call exactly once on any executor."""
    results, manager = run(executor)
    assert manager.status == "complete", manager.error
    assert calls() == EXPECTED_CALLS
    assert results.state["total"] == sum(i + i * 10 + 100 for i in range(4))


@pytest.mark.parametrize("executor", ["processes", "dask-local"])
def test_artifacts_identical_to_serial(graph, executor, tmp_path):
    """Every executor writes byte-identical artifacts and the same registry entries."""
    _, manager = run("serial")
    assert manager.status == "complete"
    serial_cache = cache_contents(graph)
    serial_params = registry_params()
    calls()
    import shutil

    shutil.rmtree("data")
    _, manager = run(executor)
    assert manager.status == "complete", manager.error
    assert cache_contents(graph) == serial_cache
    assert registry_params() == serial_params


@pytest.mark.parametrize("executor", ["processes"])
def test_warm_run_submits_nothing(graph, executor):
    """After a cold run, a parallel run executes no stage."""
    run(executor)
    calls()
    _, manager = run(executor)
    assert manager.status == "complete"
    assert calls() == []


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_failure_marks_downstream_and_continues(graph, executor):
    """A failing call fails the run and its dependents; independent records still complete."""
    graph.params("failing", '''
from experiments.graph import Params

def get_params():
    return [Params(name="p0", x=0), Params(name="p1", x=1, fail=True)]
''')
    results, manager = run_experiment(
        "graph", param_files=["failing"], report=False, **EXECUTORS[executor]
    )
    assert manager.status == "error"
    assert "left exploded" in manager.error and "left" in manager.error
    ran = calls()
    assert "joined-p0" in ran
    assert "joined-p1" not in ran and "total-agg" not in ran
    if executor == "processes":
        states = {(o.stage, o.record): o.state.value for o in manager.call_outcomes}
        assert states[("joined", "Record 1 (p1)")] == "upstream_failed"
        assert states[("left", "Record 1 (p1)")] == "failed"


def test_fail_fast_stops_scheduling(graph):
    """--fail-fast leaves calls not yet started unrun after the first failure."""
    graph.params("failing", '''
from experiments.graph import Params

def get_params():
    return [Params(name="p0", x=0, fail=True)] + [Params(name=f"q{i}", x=i) for i in range(6)]
''')
    _, manager = run_experiment(
        "graph", param_files=["failing"], report=False, parallel=1, fail_fast=True
    )
    assert manager.status == "error"
    states = [o.state.value for o in manager.call_outcomes]
    assert "upstream_failed" in states
    assert "total-agg" not in calls()


def test_killed_worker_fails_its_call_without_hanging(graph):
    """A worker killed mid-stage fails that call with a clear error; a rerun completes."""
    graph.params("dying", '''
from experiments.graph import Params

def get_params():
    return [Params(name="p0", x=0), Params(name="p1", x=1, die=True)]
''')
    _, manager = run_experiment("graph", param_files=["dying"], report=False, parallel=2,
                                timeout=60)
    assert manager.status == "error"
    died = [o for o in manager.call_outcomes if o.state.value == "failed"]
    assert died and "died" in died[0].error and "signal 9" in died[0].error
    calls()
    graph.params("dying", '''
from experiments.graph import Params

def get_params():
    return [Params(name="p0", x=0), Params(name="p1", x=1)]
''')
    _, manager = run_experiment("graph", param_files=["dying"], report=False, parallel=2)
    assert manager.status == "complete"
    assert "base-p0" not in calls()


def test_identical_calls_computed_once_in_parallel(graph):
    """Two records with the same parameters share one computation on the process executor."""
    graph.params("twins", '''
from experiments.graph import Params

def get_params():
    return [Params(name="a", x=3), Params(name="b", x=3)]
''')
    _, manager = run_experiment("graph", param_files=["twins"], report=False, parallel=2)
    assert manager.status == "complete"
    ran = calls()
    assert sum(1 for c in ran if c.startswith("base-")) == 1
    assert sum(1 for c in ran if c.startswith("left-")) == 1


def test_timeout_fails_the_call(graph):
    """A stage call past --timeout fails with a timeout error instead of running on."""
    graph.experiment("slow", EXPERIMENT.replace(
        'note("base", record)', 'note("base", record); time.sleep(30)'
    ))
    _, manager = run_experiment("slow", param_files=["graph"], report=False, parallel=2,
                                timeout=0.5, global_param_set_indices=["0"])
    assert manager.status == "error"
    assert "timeout" in manager.error.lower()


def test_transient_errors_are_retried(graph):
    """A stage raising TransientError is retried up to retries= times, then succeeds."""
    graph.experiment("flaky", '''
import os
from dataclasses import dataclass
import curifactory_like as cf
from curifactory_like.caching import JsonCacher

@dataclass
class Params(cf.ExperimentParameters):
    x: int = 1

def get_params():
    return [Params(name="a")]

@cf.stage(outputs=["v"], cachers=[JsonCacher], retries=2)
def flaky(record):
    attempts = len(os.listdir("calls"))
    open(os.path.join("calls", f"try{attempts}"), "w").close()
    if attempts < 2:
        raise cf.TransientError("busy")
    return attempts

def run(param_sets, manager):
    return [flaky(cf.Record(manager, p)) for p in param_sets]
''')
    results, manager = run_experiment("flaky", param_files=["flaky"], report=False)
    assert manager.status == "complete"
    assert results[0].state["v"] == 2


def test_non_transient_errors_are_not_retried(graph):
    """An ordinary exception is not retried even when retries= is set."""
    graph.experiment("broken", '''
import os
from dataclasses import dataclass
import curifactory_like as cf

@dataclass
class Params(cf.ExperimentParameters):
    x: int = 1

def get_params():
    return [Params(name="a")]

@cf.stage(outputs=["v"], retries=3)
def broken(record):
    open(os.path.join("calls", f"try{len(os.listdir('calls'))}"), "w").close()
    raise KeyError("nope")

def run(param_sets, manager):
    return [broken(cf.Record(manager, p)) for p in param_sets]
''')
    _, manager = run_experiment("broken", param_files=["broken"], report=False)
    assert manager.status == "error"
    assert len(os.listdir("calls")) == 1


def test_parallel_never_starts_more_workers_than_work(graph, monkeypatch):
    """--parallel 8 with one parameter set starts no more workers than calls can run at once."""
    from curifactory_like.executors import processes

    started = []
    original = processes.ProcessExecutor._spawn

    def counting(self):
        started.append(1)
        return original(self)

    monkeypatch.setattr(processes.ProcessExecutor, "_spawn", counting)
    _, manager = run_experiment("graph", param_files=["graph"], report=False, parallel=8,
                                global_param_set_indices=["0"])
    assert manager.status == "complete"
    assert 1 <= len(started) <= 2


FREEZE_PROBE = '''
import gc
import os
from dataclasses import dataclass

import curifactory_like as cf
from curifactory_like.caching import JsonCacher


@dataclass
class Params(cf.ExperimentParameters):
    x: int = 1


def get_params():
    return [Params(name=f"p{i}", x=i) for i in range(2)]


@cf.stage(outputs=["frozen"], cachers=[JsonCacher])
def probe(record):
    return {"pid": os.getpid(), "frozen": gc.get_freeze_count()}


def run(param_sets, manager):
    return [probe(cf.Record(manager, p)) for p in param_sets]
'''


def test_forked_workers_start_with_a_frozen_heap_and_the_caller_keeps_its_own(project):
    """Workers are forked with the parent's heap frozen for the collector (so its collections
    do not copy every inherited page); a library caller's collector is left as it was."""
    import gc
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("workers are spawned, not forked, on this platform")
    project.experiment("freezeprobe", FREEZE_PROBE)
    assert gc.get_freeze_count() == 0
    records, manager = run_experiment("freezeprobe", param_files=["freezeprobe"],
                                      report=False, parallel=2)
    assert manager.status == "complete", manager.error
    probes = [record.state["frozen"] for record in records]
    assert all(p["pid"] != os.getpid() for p in probes)
    assert all(p["frozen"] > 0 for p in probes)
    assert gc.get_freeze_count() == 0


def test_dask_rejects_signals_gracefully_without_distributed(monkeypatch):
    """Without the optional dependency, --dask says how to install it."""
    import builtins

    real_import = builtins.__import__

    def no_distributed(name, *args, **kwargs):
        if name == "distributed":
            raise ImportError("no distributed")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    from curifactory_like.executors.dask import DaskExecutor

    with pytest.raises(ImportError, match=r"curifactory_like\[dask\]"):
        DaskExecutor("local:1")





def test_stage_call_states_recorded_in_registry(graph):
    """Every stage call's state and timing lands in the registry, failures included."""
    graph.params("failing", '''
from experiments.graph import Params

def get_params():
    return [Params(name="p0", x=0), Params(name="p1", x=1, fail=True)]
''')
    _, manager = run_experiment("graph", param_files=["failing"], report=False, parallel=2)
    from curifactory_like.store import RunStore

    with RunStore("data") as store:
        rows = store.stage_calls(manager.get_reference_name())
    states = {(row["stage"], row["record"]): row["state"] for row in rows}
    assert states[("left", "Record 1 (p1)")] == "failed"
    assert states[("joined", "Record 1 (p1)")] == "upstream_failed"
    assert states[("joined", "Record 0 (p0)")] == "finished"
    assert all(row["seconds"] is not None for row in rows)


@pytest.fixture
def dask_cluster(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1."""
    pytest.importorskip("distributed")
    import shutil
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    dask_cli = shutil.which("dask")
    base = [dask_cli] if dask_cli else [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    scheduler_cmd = [*base, "scheduler"] if dask_cli else base
    scheduler_cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    worker_base = [dask_cli, "worker"] if dask_cli else [
        sys.executable, "-m", "distributed.cli.dask_worker"]
    with open(tmp_path / "dask.log", "w") as logs:
        processes = [subprocess.Popen(scheduler_cmd, stdout=logs, stderr=logs)]
        time.sleep(1.5)
        for _ in range(2):
            processes.append(subprocess.Popen(
                [*worker_base, address, "--nthreads", "1", "--no-dashboard", "--nworkers", "1"],
                stdout=logs, stderr=logs))
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_dask_scheduler_with_worker_processes(graph, dask_cluster):
    """A run on a separate Dask scheduler with two worker processes matches a serial run."""
    _, manager = run("serial")
    serial_cache = cache_contents(graph)
    calls()
    import shutil

    shutil.rmtree("data")
    results, manager = run_experiment("graph", param_files=["graph"], report=False,
                                      dask=dask_cluster)
    assert manager.status == "complete", manager.error
    assert calls() == EXPECTED_CALLS
    assert cache_contents(graph) == serial_cache


def test_report_names_every_failed_call(graph):
    """The run report of a parallel run lists each failed call with its traceback."""
    graph.params("failing", '''
from experiments.graph import Params

def get_params():
    return [Params(name="p0", x=0, fail=True), Params(name="p1", x=1, fail=True)]
''')
    _, manager = run_experiment("graph", param_files=["failing"], parallel=2)
    assert manager.status == "error"
    html = Path(manager.report_path).read_text()
    assert html.count("left exploded") >= 2
    assert "Traceback" in html


def test_dask_timeout_fails_the_call(graph):
    """On Dask, a call past its timeout fails the run instead of completing late."""
    pytest.importorskip("distributed")
    graph.experiment("slow", EXPERIMENT.replace(
        'note("base", record)', 'note("base", record); time.sleep(20)'
    ))
    _, manager = run_experiment("slow", param_files=["graph"], report=False, dask="local:1",
                                timeout=0.5, global_param_set_indices=["0"])
    assert manager.status == "error"
    assert "timeout" in manager.error.lower()


def test_timeout_applies_per_attempt_with_retries(graph):
    """A retried stage whose attempts each fit the timeout is not stopped by the parent."""
    graph.experiment("retrying", '''
import os, time
from dataclasses import dataclass
import curifactory_like as cf
from curifactory_like.caching import JsonCacher

@dataclass
class Params(cf.ExperimentParameters):
    x: int = 1

def get_params():
    return [Params(name="a")]

@cf.stage(outputs=["v"], cachers=[JsonCacher], retries=2, timeout=1.5)
def slowflaky(record):
    attempts = len(os.listdir("calls"))
    open(os.path.join("calls", f"try{attempts}"), "w").close()
    time.sleep(1.0)
    if attempts < 2:
        raise cf.TransientError("busy")
    return attempts

def run(param_sets, manager):
    return [slowflaky(cf.Record(manager, p)) for p in param_sets]
''')
    _, manager = run_experiment("retrying", param_files=["retrying"], report=False, parallel=1)
    assert manager.status == "complete", manager.error


def test_parallel_with_dry_cache_runs_serially_and_writes_no_cache(tmp_path: Path) -> None:
    """curifactory's reproduction line keeps --parallel; with --dry-cache the run is serial."""
    root = tmp_path / "proj"
    root.mkdir()
    write_tiny(root)
    result = run_cli(root, "run", "tiny", "-p", "tiny", "--parallel", "2", "--dry-cache")
    assert result.returncode == 0, output(result)
    assert "--parallel/--dask ignored" in output(result)
    assert cache_files(root / "data" / "cache") == []
    assert tiny_calls(root) == expected_calls(STAGES, "abc")


def test_parallel_runs_a_records_dependent_calls_in_one_worker(graph):
    """--parallel submits a record's chain of dependent calls as one task: the chain's calls
    run in one worker process (values passed in memory), with the same artifacts as serial."""
    _, manager = run_experiment("graph", param_files=["graph"], report=False, parallel=2)
    assert manager.status == "complete"
    pids: dict[str, set[str]] = {}
    for name in os.listdir("calls"):
        stage, record, pid = name.split("-")[:3]
        if record != "agg":
            pids.setdefault(record, set()).add(pid)
    assert sorted(pids) == ["p0", "p1", "p2", "p3"]
    assert all(len(p) == 1 for p in pids.values()), pids
    assert sorted(calls()) == EXPECTED_CALLS
    states = {o.state.value for o in manager.call_outcomes}
    assert states == {"finished"}
    parallel_cache = cache_contents(graph)
    for path in graph.cache.iterdir():
        if path.is_file():
            path.unlink()
    _, serial = run_experiment("graph", param_files=["graph"], report=False)
    assert serial.status == "complete"
    assert cache_contents(graph) == parallel_cache


def test_failure_inside_a_chain_still_runs_independent_calls(graph):
    """When a chained call fails, the calls of its chain that do not depend on it still run
    (on their own) and its dependents are marked upstream_failed."""
    graph.params("failing", '''
from experiments.graph import Params

def get_params():
    return [Params(name="p0", x=0, fail=True)]
''')
    _, manager = run_experiment("graph", param_files=["failing"], report=False, parallel=2)
    assert manager.status == "error"
    states = {o.stage: o.state.value for o in manager.call_outcomes}
    assert states == {
        "base": "finished",
        "left": "failed",
        "right": "finished",
        "joined": "upstream_failed",
        "total": "upstream_failed",
    }
    assert calls() == ["base-p0", "left-p0", "right-p0"]
