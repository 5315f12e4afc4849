"""Shared sources and helpers for the tests that drive the real ``experiment`` command.

``TINY_EXPERIMENT`` is a three-stage chain ``make -> double -> square`` (JSON-cached) whose stage
bodies append ``"<stage> <param set name>"`` to ``calls.txt`` in the project directory, so a test
proves what was computed by counting lines, not by reading logs.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

TINY_PARAMS = '''\
"""Three tiny parameter sets."""

from dataclasses import dataclass

import curifactory_like as cf


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1


def get_params():
    return [Params(name="a", n=1), Params(name="b", n=2), Params(name="c", n=3)]
'''

MORE_PARAMS = '''\
"""Two more parameter sets."""

from params.tiny import Params


def get_params():
    return [Params(name="d", n=4), Params(name="e", n=5)]
'''

TINY_EXPERIMENT = '''\
"""A tiny three-stage experiment that counts its stage calls."""

import curifactory_like as cf
from curifactory_like.caching import JsonCacher


def count(stage, record):
    with open("calls.txt", "a", encoding="utf-8") as calls:
        calls.write(f"{stage} {record.params.name}\\n")


@cf.stage(outputs=["x"], cachers=[JsonCacher])
def make(record):
    count("make", record)
    return record.params.n


@cf.stage(inputs=["x"], outputs=["y"], cachers=[JsonCacher])
def double(record, x):
    count("double", record)
    return x * 2


@cf.stage(inputs=["y"], outputs=["z"], cachers=[JsonCacher])
def square(record, y):
    count("square", record)
    return y * y


def run(param_sets, manager):
    for param_set in param_sets:
        square(double(make(cf.Record(manager, param_set))))
'''

FAILING_EXPERIMENT = '''\
"""Its second stage raises."""

import curifactory_like as cf
from curifactory_like.caching import JsonCacher
from experiments.tiny import make


@cf.stage(inputs=["x"], outputs=["w"], cachers=[JsonCacher])
def explode(record, x):
    raise ValueError("kaboom")


def run(param_sets, manager):
    for param_set in param_sets:
        explode(make(cf.Record(manager, param_set)))
'''

STAGES = ("make", "double", "square")
ARTIFACTS = {"make": "x", "double": "y", "square": "z"}

GOLDEN_HASH_A = "1b4d768a21f7333bf890a11ee3c5607b"
"""The hash of parameter set ``a`` of ``TINY_PARAMS`` (changing it renames every user's cache)."""

NO_TRACEBACK = "Traceback (most recent call last)"


def experiment_command() -> list[str]:
    """The installed ``experiment`` console script, run with this interpreter."""
    script = Path(sys.executable).with_name("experiment")
    if script.exists():
        return [sys.executable, str(script)]
    found = shutil.which("experiment")
    if found is None:  # pragma: no cover - the package is installed for the tests
        raise RuntimeError("the `experiment` command is not installed")
    return [found]


def command_env() -> dict[str, str]:
    """The environment for the command: wide output, no colour, no distributed-rank variables."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "NODE_RANK")}
    env.update(COLUMNS="250", NO_COLOR="1", TERM="dumb", PYTHONPATH=_package_only_path())
    return env


@functools.lru_cache(maxsize=1)
def _package_only_path() -> str:
    """A folder holding only a link to the package under test, for the command's PYTHONPATH.

    The command then runs the same ``curifactory_like`` the tests import (a git worktree's, not
    whichever checkout is installed), without also putting this repository's own example
    ``experiments``/``params`` packages ahead of the test project's.
    """
    import curifactory_like

    folder = Path(tempfile.mkdtemp(prefix="cfl-package-"))
    (folder / "curifactory_like").symlink_to(Path(curifactory_like.__file__).parent)
    return str(folder)


def run_cli(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``experiment ARGS...`` in ``root`` and capture its output."""
    return subprocess.run(
        [*experiment_command(), *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=timeout,
        check=False,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    """stdout and stderr of a finished command, together."""
    return result.stdout + result.stderr


def write_tiny(root: Path) -> Path:
    """Write the tiny experiment and its two parameter files (``tiny``, ``more``) into ``root``."""
    for package in ("experiments", "params"):
        write_source(root, f"{package}/__init__.py", "")
    write_source(root, "experiments/tiny.py", TINY_EXPERIMENT)
    write_source(root, "params/tiny.py", TINY_PARAMS)
    write_source(root, "params/more.py", MORE_PARAMS)
    return root


def write_source(root: Path, relative: str, source: str) -> Path:
    """Write a dedented source file below ``root``."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def copy_project(source: Path, destination: Path) -> None:
    """Copy a whole project (sources, cache, registry, logs) into ``destination``."""
    shutil.copytree(
        source, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )


def calls(root: Path) -> Counter[str]:
    """How often each ``"<stage> <param set>"`` ran, from ``calls.txt``."""
    path = root / "calls.txt"
    if not path.exists():
        return Counter()
    return Counter(path.read_text(encoding="utf-8").splitlines())


def reset_calls(root: Path) -> None:
    """Forget the stage calls counted so far."""
    (root / "calls.txt").unlink(missing_ok=True)


def expected_calls(stages: tuple[str, ...] | list[str], names: str) -> Counter[str]:
    """One call of every stage in ``stages`` for every parameter set name in ``names``."""
    return Counter(f"{stage} {name}" for stage in stages for name in names)


def cache_files(directory: Path) -> list[str]:
    """Names of the files in a cache directory (temporary dot-files excluded)."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def cache_snapshot(directory: Path) -> dict[str, bytes]:
    """Every cache file's bytes, by name."""
    return {name: (directory / name).read_bytes() for name in cache_files(directory)}


def registry_runs(root: Path) -> list[dict[str, Any]]:
    """The ``runs`` table of ``data/store.db``, oldest first, with ``info`` decoded."""
    path = root / "data" / "store.db"
    if not path.exists():
        return []
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT reference, experiment_name, run_number, status, error, info FROM runs "
            "ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    keys = ("reference", "experiment_name", "run_number", "status", "error", "info")
    runs = [dict(zip(keys, row, strict=True)) for row in rows]
    for run in runs:
        run["info"] = json.loads(run["info"])
    return runs
