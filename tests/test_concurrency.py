"""Concurrency: several `experiment run` processes on one project and cache at the same time.

Each scenario starts its commands together (slowed-down stages, so they overlap) on a fresh
copy of the campaign project (``_campaign.py``), then checks that every command completed,
that every artifact is byte-identical to the one a clean lone run writes and matches its
sidecar, that every write of an artifact the registry records produced that same content
(so a rewrite by a second process is atomic and identical), that run numbers are unique, and
that ``reports/index.html`` lists every run, once, with the status the registry holds.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
import time
from pathlib import Path

import pytest
from _campaign import artifact_files, finish, start_cli, untrusted_artifacts, write_campaign_project
from _projects import NO_TRACEBACK, registry_runs, write_source

PAUSE = {"CRASHY_PAUSE": "0.03"}

SCENARIOS = {
    "same_experiment_x3": [("run", "crashy"), ("run", "crashy"), ("run", "crashy")],
    "overlapping_param_sets_x2": [
        ("run", "crashy", "-p", "crashy"),
        ("run", "crashy", "-p", "overlap"),
    ],
    "two_experiments_shared_prefix_x4": [
        ("run", "crashy", "-p", "crashy", "--prefix", "shared"),
        ("run", "crashy", "-p", "overlap", "--prefix", "shared"),
        ("run", "other", "-p", "crashy", "--prefix", "shared"),
        ("run", "other", "-p", "overlap", "--prefix", "shared"),
    ],
}


def _lone_runs(root: Path, commands: list[tuple[str, ...]]) -> dict[str, bytes]:
    """The artifacts the same commands write one after another in a fresh project."""
    for command in commands:
        code, text = finish(start_cli(root, *command))
        assert code == 0, text
    return artifact_files(root / "data" / "cache")


def _artifact_writes(root: Path) -> list[tuple[str, int, str, str]]:
    """(path, size, checksum, reference) of every computed/overwritten artifact in the registry."""
    connection = sqlite3.connect(root / "data" / "store.db")
    try:
        return connection.execute(
            "SELECT path, size, checksum, reference FROM artifacts"
            " WHERE action IN ('computed', 'overwritten')"
        ).fetchall()
    finally:
        connection.close()


def _index_rows(root: Path) -> dict[str, str]:
    """Run reference -> status shown in ``reports/index.html`` (each run listed once)."""
    page = (root / "reports" / "index.html").read_text(encoding="utf-8")
    shown: dict[str, str] = {}
    for reference, status in re.findall(
        r'<tr class="run [^"]*" data-reference="([^"]+)">\s*<td><span class="status [^"]*">'
        r"([^<]*)</span>",
        page,
    ):
        assert html.unescape(reference) not in shown, f"{reference} listed twice"
        shown[html.unescape(reference)] = status.lower()
    return shown


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_concurrent_runs_share_cache_and_registry(scenario: str, tmp_path: Path):
    """All runs complete; cache, registry and runs index are consistent afterwards."""
    commands = SCENARIOS[scenario]
    expected = _lone_runs(write_campaign_project(tmp_path / "lone"), commands)
    root = write_campaign_project(tmp_path / "shared")
    processes = [start_cli(root, *command, env=PAUSE) for command in commands]
    results = [finish(process) for process in processes]
    for code, text in results:
        assert code == 0, text
        assert NO_TRACEBACK not in text
        assert "integrity check" not in text  # no process ever saw a half-written artifact

    cache = root / "data" / "cache"
    assert artifact_files(cache) == expected
    assert untrusted_artifacts(cache) == []
    assert not [p.name for p in cache.iterdir() if ".tmp" in p.name]  # no leftover temp files

    expected_sums = {}
    for path, size, checksum, reference in _artifact_writes(root):
        name = Path(path).name
        assert name in expected, (name, reference)
        expected_sums.setdefault(name, (size, checksum))
        assert (size, checksum) == expected_sums[name], f"{name} rewritten differently"
        assert size == len(expected[name])

    runs = registry_runs(root)
    assert len(runs) == len(commands)
    assert all(run["status"] == "complete" for run in runs)
    numbers = [(run["experiment_name"], run["run_number"]) for run in runs]
    assert len(set(numbers)) == len(numbers)
    for experiment in {name for name, _ in numbers}:
        mine = sorted(number for name, number in numbers if name == experiment)
        assert mine == list(range(1, len(mine) + 1))

    shown = _index_rows(root)
    assert shown == {run["reference"]: "complete" for run in runs}
    for run in runs:
        assert (root / "reports" / run["reference"] / "index.html").is_file()


# ------------------------------------------------------------------ a read during a rewrite

SLOW_EXPERIMENT = '''
"""make (a user cacher that writes and reads in place, slowly) -> use."""

import json
import os
import time

import curifactory_like as cf
from curifactory_like.caching import Cacheable, JsonCacher


def _flag(variable):
    path = os.environ.get(variable)
    if path:
        open(path, "w").close()


class InPlaceCacher(Cacheable):
    """Writes its file in place in two halves and reads it in two unbuffered halves; between
    the halves it can pause (WRITE_PAUSE / READ_PAUSE seconds), after touching a flag file."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "extension": ".json"})

    def save(self, obj):
        data = json.dumps(obj).encode()
        with open(self.get_path(), "wb", buffering=0) as outfile:
            outfile.write(data[: len(data) // 2])
            _flag("WRITER_HALF_FLAG")
            time.sleep(float(os.environ.get("WRITE_PAUSE", "0")))
            outfile.write(data[len(data) // 2 :])

    def load(self):
        size = os.path.getsize(self.get_path())
        with open(self.get_path(), "rb", buffering=0) as infile:
            first = infile.read(size // 2)
            _flag("READER_HALF_FLAG")
            time.sleep(float(os.environ.get("READ_PAUSE", "0")))
            rest = infile.read()
        return json.loads(first + rest)


OUTPUT = cf.Lazy("x") if os.environ.get("LAZY_X") else "x"


@cf.stage(outputs=[OUTPUT], cachers=[InPlaceCacher])
def make(record):
    return list(range(2000))


@cf.stage(inputs=["x"], outputs=["total"], cachers=[JsonCacher])
def use(record, x):
    return sum(x)


def run(param_sets, manager):
    for param_set in param_sets:
        use(make(cf.Record(manager, param_set)))


def get_params():
    return [cf.ExperimentParameters(name="only")]
'''


def _wait_for(path: Path, process, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, finish(process)[1]
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("lazy", [False, True], ids=["plain", "lazy"])
def test_a_load_waits_for_a_rewrite_in_place_by_another_run(tmp_path: Path, lazy: bool):
    """A run reading a cached artifact holds its shared lock until the read is done, so another
    run rewriting it in place (a user cacher without atomic writes) waits instead of truncating
    the file under the reader."""
    root = tmp_path / "project"
    write_source(root, "experiments/__init__.py", "")
    write_source(root, "experiments/slow.py", SLOW_EXPERIMENT)
    lazy_env = {"LAZY_X": "1"} if lazy else {}
    code, text = finish(start_cli(root, "run", "slow", env=lazy_env))
    assert code == 0, text

    reader_half = tmp_path / "reader_half"
    reader = start_cli(
        root,
        "run", "slow", "--overwrite-stage", "use",  # use computes, so make's x is read
        env={**lazy_env, "READ_PAUSE": "4", "READER_HALF_FLAG": str(reader_half)},
    )
    _wait_for(reader_half, reader)
    writer = start_cli(
        root, "run", "slow", "--overwrite-stage", "make", env={**lazy_env, "WRITE_PAUSE": "5"}
    )
    reader_code, reader_text = finish(reader)
    writer_code, writer_text = finish(writer)

    assert reader_code == 0, reader_text
    assert writer_code == 0, writer_text
    assert NO_TRACEBACK not in reader_text and "integrity check" not in reader_text
    [total] = list((root / "data" / "cache").glob("*_use_total.json"))
    assert json.loads(total.read_text()) == sum(range(2000))
