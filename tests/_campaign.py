"""A project for the reliability campaign (crash safety and concurrency tests).

``experiments/crashy.py`` chains ``make -> double -> square -> check`` over the parameter sets
of ``params/crashy.py``, with three kinds of cachers: the built-in JSON and pickle cachers
(atomic writes) and ``HalfWriteCacher``, a user cacher that writes its file in place, in two
halves, passing the fault checkpoint ``user.half_written`` in between, so a kill there leaves a
genuinely torn artifact at its final path. ``check`` fails the run if any value it receives is
not the one a clean run computes, so a torn or wrong artifact that got loaded cannot go unseen.
Stage ``square`` also reports a JSON reportable, so reportable files are written too.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from _projects import command_env, experiment_command, write_source

CRASHY_PARAMS = '''\
"""Parameter sets of the crash and concurrency campaign."""

from dataclasses import dataclass

import curifactory_like as cf


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1


def get_params():
    return [Params(name=f"p{n}", n=n) for n in (1, 2, 3)]
'''

OVERLAP_PARAMS = '''\
"""Parameter sets overlapping with params/crashy.py (p2 and p3 are the same sets)."""

from params.crashy import Params


def get_params():
    return [Params(name=f"p{n}", n=n) for n in (2, 3, 4)]
'''

CRASHY_EXPERIMENT = '''\
"""make -> double -> square -> check, with atomic built-in cachers and a tearable user cacher."""

import json
import os
import time

import curifactory_like as cf
from curifactory_like import faults
from curifactory_like.caching import Cacheable, JsonCacher, PickleCacher
from curifactory_like.reporting import JsonReporter

PAUSE = float(os.environ.get("CRASHY_PAUSE", "0"))


class HalfWriteCacher(Cacheable):
    """Writes in place (not atomically), half the file at a time."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "extension": ".json"})

    def save(self, obj):
        text = json.dumps(obj)
        half = len(text) // 2
        with open(self.get_path(), "w", encoding="utf-8") as outfile:
            outfile.write(text[:half])
            outfile.flush()
            faults.checkpoint("user.half_written")
            outfile.write(text[half:])

    def load(self):
        with open(self.get_path(), encoding="utf-8") as infile:
            return json.load(infile)


def expected_z(n):
    return {"n": n, "values": [(2 * n) ** 2 + i for i in range(200)]}


@cf.stage(outputs=["x"], cachers=[JsonCacher])
def make(record):
    time.sleep(PAUSE)
    return record.params.n


@cf.stage(inputs=["x"], outputs=["y"], cachers=[PickleCacher])
def double(record, x):
    time.sleep(PAUSE)
    if x != record.params.n:
        raise ValueError(f"loaded a wrong x: {x!r}")
    return {"doubled": 2 * x}


@cf.stage(inputs=["y"], outputs=["z"], cachers=[HalfWriteCacher])
def square(record, y):
    time.sleep(PAUSE)
    if y != {"doubled": 2 * record.params.n}:
        raise ValueError(f"loaded a wrong y: {y!r}")
    record.report(JsonReporter({"n": record.params.n}, name="summary"))
    return {"n": record.params.n, "values": [y["doubled"] ** 2 + i for i in range(200)]}


@cf.stage(inputs=["z"], outputs=["ok"], cachers=[JsonCacher])
def check(record, z):
    if z != expected_z(record.params.n):
        raise ValueError(f"loaded a wrong z: {z!r}")
    return True


def run(param_sets, manager):
    for param_set in param_sets:
        check(square(double(make(cf.Record(manager, param_set)))))
'''

OTHER_EXPERIMENT = '''\
"""A second experiment sharing make and double (so their artifacts) with crashy."""

import curifactory_like as cf
from curifactory_like.caching import JsonCacher
from experiments.crashy import double, make


@cf.stage(inputs=["y"], outputs=["half"], cachers=[JsonCacher])
def halve(record, y):
    return y["doubled"] // 2


def run(param_sets, manager):
    for param_set in param_sets:
        halve(double(make(cf.Record(manager, param_set))))
'''


def write_campaign_project(root: Path) -> Path:
    """Write the campaign's experiments (crashy, other) and parameter files (crashy, overlap)."""
    for package in ("experiments", "params"):
        write_source(root, f"{package}/__init__.py", "")
    write_source(root, "experiments/crashy.py", CRASHY_EXPERIMENT)
    write_source(root, "experiments/other.py", OTHER_EXPERIMENT)
    write_source(root, "params/crashy.py", CRASHY_PARAMS)
    write_source(root, "params/overlap.py", OVERLAP_PARAMS)
    return root


def start_cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``experiment ARGS...`` in ``root`` without waiting for it."""
    return subprocess.Popen(
        [*experiment_command(), *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**command_env(), **(env or {})},
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
    """Wait for a started command; its exit status (``-9`` when SIGKILLed) and output."""
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        out, _ = process.communicate()
        raise
    return process.returncode, out


def artifact_files(cache: Path) -> dict[str, bytes]:
    """Every artifact (no sidecars, no temporary dot-files) in a cache directory, by name."""
    if not cache.exists():
        return {}
    return {
        p.name: p.read_bytes()
        for p in cache.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and not p.name.endswith("_metadata.json")
        and p.name != "store.db"
        and not p.name.startswith("store.db")
    }


def untrusted_artifacts(cache: Path) -> list[str]:
    """Artifacts whose sidecar is missing, unreadable or disagrees with their size or checksum.

    Computed independently of the package (plain sha256 of the file against the sidecar).
    """
    untrusted = []
    for name, data in sorted(artifact_files(cache).items()):
        stem, _ = os.path.splitext(name)
        sidecar = cache / f"{stem}_metadata.json"
        try:
            metadata: Any = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            untrusted.append(name)
            continue
        checksum = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if (
            metadata.get("artifact_size") != len(data)
            or metadata.get("artifact_checksum") != checksum
        ):
            untrusted.append(name)
    return untrusted
