"""Shared fixtures: a throw-away project directory with its own experiments and params modules."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_MODULE_PREFIXES = ("experiments", "params")


def _forget_project_modules() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in PROJECT_MODULE_PREFIXES:
            del sys.modules[name]


class Project:
    """A project folder (cwd during the test) with helpers to write experiment and param files."""

    def __init__(self, root: Path):
        self.root = root
        (root / "experiments").mkdir()
        (root / "params").mkdir()
        (root / "experiments" / "__init__.py").write_text("")
        (root / "params" / "__init__.py").write_text("")

    def write(self, relative: str, source: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        _forget_project_modules()
        return path

    def experiment(self, name: str, source: str) -> Path:
        return self.write(f"experiments/{name}.py", source)

    def params(self, name: str, source: str) -> Path:
        return self.write(f"params/{name}.py", source)

    @property
    def cache(self) -> Path:
        return self.root / "data" / "cache"

    def cache_files(self) -> list[str]:
        if not self.cache.exists():
            return []
        return sorted(p.name for p in self.cache.iterdir() if not p.name.startswith("."))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A fresh project directory as the working directory, its modules importable."""
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    saved_path = list(sys.path)
    sys.path.insert(0, str(root))
    _forget_project_modules()
    from curifactory_like import hashing

    hashing.set_hash_mode(None)
    yield Project(root)
    sys.path[:] = saved_path
    _forget_project_modules()
    hashing.set_hash_mode(None)
    os.chdir(tmp_path)
