"""Crash safety: `experiment run` killed with SIGKILL anywhere, then run again.

A clean run of ``experiments/crashy.py`` (see ``_campaign.py``) is traced through the fault
checkpoints of :mod:`curifactory_like.faults`; every checkpoint passed is a possible kill point
(``name:n``, the n-th pass). The default campaign kills a fresh project at every kind of point
and at evenly spread others (``KILL_POINTS`` in all: stage bodies, artifact writes, sidecar
writes, atomic renames, registry transactions, report pages, and the middle of a user cacher's
in-place write), plus a few kills sent by the parent at random moments. After each kill:

* the killed run is not recorded as complete (no row yet, or an ``incomplete`` one);
* every artifact left on disk that its sidecar does not vouch for is named in a warning by the
  rerun, which recomputes it (the experiment's ``check`` stage fails on any wrong value, so a
  torn artifact that got loaded would fail the rerun);
* the rerun completes, and afterwards every artifact is byte-identical to a clean run's and
  matches its sidecar, and run numbers are unique.

Set ``CURIFACTORY_LIKE_CRASH_SWEEP=all`` to kill at every traced point (~120 runs, slow).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
from _campaign import (
    artifact_files,
    finish,
    start_cli,
    untrusted_artifacts,
    write_campaign_project,
)
from _projects import NO_TRACEBACK, output, registry_runs, run_cli

from curifactory_like.faults import KILL_AT_VARIABLE, TRACE_VARIABLE

KILL_POINTS = 26
"""Precise kill points in the default campaign (every kind of checkpoint at least once)."""
TIMED_KILLS = 4
"""Kills sent by the parent at random moments of a run with slowed-down stages."""


def _trace_points(trace: list[str]) -> list[str]:
    """``name:n`` for every checkpoint pass, in order, up to the run's final status commit."""
    seen: Counter[str] = Counter()
    points = []
    for name in trace:
        seen[name] += 1
        points.append(f"{name}:{seen[name]}")
    last_commit = max(i for i, name in enumerate(trace) if name == "registry.committed")
    return points[:last_commit]  # killing after the final status commit kills a finished run


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], list[str]]:
    """The artifacts of a clean traced run, and the kill points that run passed."""
    root = write_campaign_project(tmp_path_factory.mktemp("clean"))
    trace_file = root / "trace.txt"
    code, text = finish(start_cli(root, "run", "crashy", env={TRACE_VARIABLE: str(trace_file)}))
    assert code == 0, text
    artifacts = artifact_files(root / "data" / "cache")
    assert len(artifacts) == 12
    return artifacts, _trace_points(trace_file.read_text().splitlines())


def _chosen(points: list[str], count: int) -> list[str]:
    """The first pass of every kind of checkpoint, plus evenly spread others, ``count`` in all."""
    chosen: list[str] = []
    for point in points:
        if point.split(":")[0] not in {c.split(":")[0] for c in chosen}:
            chosen.append(point)
    step = len(points) / max(1, count - len(chosen))
    position = step / 2
    while len(chosen) < count and position < len(points):
        if points[int(position)] not in chosen:
            chosen.append(points[int(position)])
        position += step
    return sorted(chosen, key=points.index)


def _kill_points() -> list[str]:
    """Kill points of the campaign, computed from a traced clean run in a scratch directory."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cfl-trace-") as scratch:
        root = write_campaign_project(Path(scratch))
        trace_file = root / "trace.txt"
        code, text = finish(start_cli(root, "run", "crashy", env={TRACE_VARIABLE: str(trace_file)}))
        assert code == 0, text
        points = _trace_points(trace_file.read_text().splitlines())
    if os.environ.get("CURIFACTORY_LIKE_CRASH_SWEEP") == "all":
        return points
    return _chosen(points, KILL_POINTS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``kill_point`` with the points a clean run passes (traced once)."""
    if "kill_point" in metafunc.fixturenames:
        points = _kill_points()
        metafunc.parametrize("kill_point", points, ids=points)


def _runs(root: Path) -> list[dict]:
    """The registry's runs; none when the kill came before the schema was committed."""
    try:
        return registry_runs(root)
    except sqlite3.OperationalError as exc:
        assert "no such table" in str(exc)
        return []


def _check_recovery(root: Path, clean_artifacts: dict[str, bytes], completed: bool) -> None:
    """Rerun after a kill and check everything the campaign promises."""
    cache = root / "data" / "cache"
    killed_rows = _runs(root)
    assert len(killed_rows) <= 1
    if completed:
        assert [row["status"] for row in killed_rows] == ["complete"]
    else:
        assert all(row["status"] == "incomplete" for row in killed_rows), killed_rows
    untrusted = untrusted_artifacts(cache)

    rerun = run_cli(root, "run", "crashy")
    text = output(rerun)
    assert rerun.returncode == 0, text
    assert NO_TRACEBACK not in text
    for name in untrusted:  # a torn or unvouched artifact is recomputed, with a warning naming it
        assert name in text and "integrity check" in text, (name, text)

    assert artifact_files(cache) == clean_artifacts
    assert untrusted_artifacts(cache) == []
    rows = registry_runs(root)
    assert rows[: len(killed_rows)] == killed_rows  # the killed run's row is kept as it was
    assert rows[-1]["status"] == "complete"
    assert len({row["run_number"] for row in rows}) == len(rows)
    assert (root / "reports" / "index.html").is_file()


def test_kill_at_checkpoint_then_rerun(
    kill_point: str, clean: tuple[dict[str, bytes], list[str]], tmp_path: Path
):
    """SIGKILL at one checkpoint; the rerun recovers fully and loads nothing torn."""
    root = write_campaign_project(tmp_path)
    code, text = finish(start_cli(root, "run", "crashy", env={KILL_AT_VARIABLE: kill_point}))
    assert code == -signal.SIGKILL, f"the run was not killed at {kill_point}:\n{text}"
    _check_recovery(root, clean[0], completed=False)


@pytest.mark.parametrize("seed", range(TIMED_KILLS))
def test_kill_at_random_moment_then_rerun(
    seed: int, clean: tuple[dict[str, bytes], list[str]], tmp_path: Path
):
    """SIGKILL from the parent at a random moment of a run with slow stages; rerun recovers."""
    generator = random.Random(seed)
    points = clean[1]
    # a moment while stages run (each pauses): after the last stage the run ends within
    # milliseconds, too soon for a kill from outside; the named checkpoints cover that tail
    last_stage = max(i for i, point in enumerate(points) if point.startswith("stage.end:"))
    target = generator.randrange(1, last_stage + 1)
    root = write_campaign_project(tmp_path)
    trace_file = root / "trace.txt"
    trace_file.touch()
    process = start_cli(
        root, "run", "crashy", env={TRACE_VARIABLE: str(trace_file), "CRASHY_PAUSE": "0.05"}
    )
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if len(trace_file.read_text().splitlines()) >= target:
            time.sleep(generator.uniform(0, 0.03))
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    code, text = finish(process)
    assert code == -signal.SIGKILL, f"the run ended before the kill:\n{text}"
    trace = trace_file.read_text().splitlines()
    completed = trace.count("registry.committed") > len(
        [p for p in points if p.startswith("registry.committed:")]
    )
    _check_recovery(root, clean[0], completed=completed)


def test_checkpoints_cost_nothing_when_unset():
    """Without the environment variables a checkpoint returns at once and records nothing."""
    from curifactory_like import faults

    if os.environ.get(KILL_AT_VARIABLE) or os.environ.get(TRACE_VARIABLE):
        pytest.skip("fault injection is switched on in this environment")
    faults.checkpoint("stage.start")
    assert faults._passed == {}
