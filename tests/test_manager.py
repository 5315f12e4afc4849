"""ArtifactManager: run identity, registry rows, configuration and paths."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

import curifactory_like as cf
from curifactory_like.store import RunStore


@dataclass
class P(cf.ExperimentParameters):
    x: int = 1


def test_reference_name_format(project):
    """The reference is <experiment>_<run number>_<YYYY-MM-DD-THHMMSS>."""
    manager = cf.ArtifactManager("exp", suppress_live_log=True)
    assert re.fullmatch(r"exp_1_\d{4}-\d\d-\d\d-T\d{6}", manager.get_reference_name())


def test_run_numbers_increment_per_experiment(project):
    """Each new manager of an experiment gets the next run number; experiments are separate."""
    numbers = [cf.ArtifactManager("a", suppress_live_log=True).experiment_run_number
               for _ in range(3)]
    other = cf.ArtifactManager("b", suppress_live_log=True).experiment_run_number
    assert numbers == [1, 2, 3] and other == 1


def test_registry_row_created(project):
    """Creating a live manager records the run in data/store.db as LIVE, with its notes."""
    manager = cf.ArtifactManager("exp", notes="first try", suppress_live_log=True)
    with RunStore("data") as store:
        row = store.get_run(manager.get_reference_name())
    assert row["notes"] == "first try" and row["status"] == "LIVE"


def test_dry_manager_writes_nothing(project):
    """A dry manager creates no registry, cache, log or report folders."""
    cf.ArtifactManager("exp", dry=True, suppress_live_log=True)
    for folder in ("data", "logs", "reports"):
        assert not (project.root / folder).exists()


def test_paths_from_config(project):
    """Paths come from curifactory_config.json found from the working directory."""
    (project.root / "curifactory_config.json").write_text(
        json.dumps({"cache_path": "elsewhere/cache", "manager_cache_path": "elsewhere"})
    )
    manager = cf.ArtifactManager("exp", suppress_live_log=True)
    assert manager.cache_path == "elsewhere/cache"
    assert (project.root / "elsewhere" / "store.db").exists()


def test_config_found_from_subdirectory(project):
    """Run from a subdirectory, the project's config applies with paths rebased."""
    (project.root / "curifactory_config.json").write_text(json.dumps({"cache_path": "c"}))
    sub = project.root / "notebooks"
    sub.mkdir()
    import os

    os.chdir(sub)
    manager = cf.ArtifactManager("exp", dry=True, suppress_live_log=True)
    assert os.path.abspath(manager.cache_path) == str(project.root / "c")


def test_invalid_config_names_the_file(project):
    """A config file that is not JSON gives a ConfigurationError naming it."""
    (project.root / "curifactory_config.json").write_text("{not json")
    with pytest.raises(cf.ConfigurationError, match="curifactory_config.json"):
        cf.ArtifactManager("exp", suppress_live_log=True)


def test_full_commit_recorded(project):
    """The git commit is recorded with all 40 characters (curifactory drops the last one)."""
    import git

    repo = git.Repo.init(project.root)
    with repo.config_writer() as config:
        config.set_value("user", "name", "t")
        config.set_value("user", "email", "t@example.com")
    repo.index.add(["experiments/__init__.py"])
    repo.index.commit("init")
    manager = cf.ArtifactManager("exp", suppress_live_log=True)
    assert manager.git_commit_hash == repo.head.commit.hexsha
    assert len(manager.git_commit_hash) == 40
    assert manager.git_workdir_dirty  # params/ is untracked


def test_param_sets_registered_in_one_run(project):
    """Parameter sets of a run are registered in the registry with their representation."""
    manager = cf.ArtifactManager("exp", suppress_live_log=True)
    records = [cf.Record(manager, P(name=f"p{i}", x=i)) for i in range(1000)]
    manager.flush_registry()
    with RunStore("data") as store:
        entry = store.get_param_set(records[500].get_hash())
    assert entry["name"] == "p500"


def test_uncommitted_diff_stored_with_run(project):
    """The diff of uncommitted changes and untracked files are stored with the run."""
    import git

    repo = git.Repo.init(project.root)
    with repo.config_writer() as config:
        config.set_value("user", "name", "t")
        config.set_value("user", "email", "t@example.com")
    tracked = project.root / "experiments" / "__init__.py"
    repo.index.add([str(tracked)])
    repo.index.commit("init")
    tracked.write_text("CHANGED = True\n")
    manager = cf.ArtifactManager("exp", suppress_live_log=True)
    with RunStore("data") as store:
        row = store.get_run(manager.get_reference_name())
    assert "+CHANGED = True" in row["git_diff"]
    assert "params/__init__.py" in row["git_untracked"]
