"""Provenance (curifactory_like.provenance) against real git repositories in tmp_path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import git
import pytest

from curifactory_like.provenance import (
    GitInfo,
    git_info,
    pip_freeze,
    platform_info,
    reproduction_line,
    run_line,
)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[git.Repo]:
    """A git repository with one commit of tracked.txt (and a sub/ folder), closed afterwards."""
    root = tmp_path / "project"
    root.mkdir()
    created = git.Repo.init(root)
    with created.config_writer() as config:
        config.set_value("user", "name", "Test User")
        config.set_value("user", "email", "test@example.com")
    (root / "tracked.txt").write_text("one\n")
    (root / "sub").mkdir()
    (root / "sub" / "module.py").write_text("x = 1\n")
    (root / ".gitignore").write_text("*.log\n")
    created.index.add(["tracked.txt", "sub/module.py", ".gitignore"])
    created.index.commit("initial")
    yield created
    created.close()


def _root(repo: git.Repo) -> Path:
    return Path(str(repo.working_tree_dir))


def test_commit_is_full_hexsha(repo: git.Repo) -> None:
    """The commit is the full 40-character hash of HEAD."""
    info = git_info(_root(repo))
    assert info.commit == repo.head.commit.hexsha
    assert len(info.commit) == 40


def test_clean_repository_is_not_dirty(repo: git.Repo) -> None:
    """A freshly committed repository is clean, with no diff and no untracked files."""
    info = git_info(_root(repo))
    assert (info.dirty, info.diff, info.untracked) == (False, "", ())
    assert info.branch == repo.active_branch.name
    assert info.root == str(_root(repo))


def test_modified_tracked_file_is_dirty_with_diff(repo: git.Repo) -> None:
    """An unstaged change makes the tree dirty and appears, newline-terminated, in the diff."""
    (_root(repo) / "tracked.txt").write_text("one\ntwo changed\n")
    info = git_info(_root(repo))
    assert info.dirty
    assert "+two changed" in info.diff
    assert info.diff.endswith("\n")


def test_staged_only_change_is_dirty(repo: git.Repo) -> None:
    """A change that is staged but not committed makes the tree dirty and is in the diff."""
    (_root(repo) / "tracked.txt").write_text("staged\n")
    repo.index.add(["tracked.txt"])
    info = git_info(_root(repo))
    assert info.dirty
    assert "+staged" in info.diff


def test_untracked_file_is_dirty_and_listed(repo: git.Repo) -> None:
    """An untracked file makes the tree dirty and is listed; an ignored one is not."""
    (_root(repo) / "new.py").write_text("y = 2\n")
    (_root(repo) / "noise.log").write_text("ignored\n")
    info = git_info(_root(repo))
    assert info.dirty
    assert info.untracked == ("new.py",)


def test_untracked_list_matches_gitpython_with_renames_spaces_and_folders(repo: git.Repo) -> None:
    """Untracked files are listed one by one, relative to the root, from any subdirectory: odd
    names whole, files in new folders each, and a staged rename's old path not among them."""
    root = _root(repo)
    repo.git.mv("tracked.txt", "renamed.txt")
    (root / "with space and ünïcode.txt").write_text("a\n")
    (root / "new_folder" / "deep").mkdir(parents=True)
    (root / "new_folder" / "deep" / "x.py").write_text("b\n")
    (root / "new_folder" / "y.py").write_text("c\n")
    info = git_info(root / "sub")
    assert sorted(info.untracked) == sorted(repo.untracked_files)
    assert "with space and ünïcode.txt" in info.untracked and len(info.untracked) == 3
    assert info.dirty and "renamed.txt" in info.diff


def test_works_from_a_subdirectory(repo: git.Repo) -> None:
    """git_info of a subdirectory describes the enclosing repository."""
    info = git_info(_root(repo) / "sub")
    assert info.commit == repo.head.commit.hexsha
    assert info.root == str(_root(repo))


def test_detached_head_has_no_branch(repo: git.Repo) -> None:
    """With HEAD detached the branch is None but the commit is known."""
    repo.git.checkout(repo.head.commit.hexsha)
    info = git_info(_root(repo))
    assert info.branch is None
    assert info.commit == repo.head.commit.hexsha


def test_empty_repository_has_no_commit(tmp_path: Path) -> None:
    """A repository without commits gives commit None."""
    with git.Repo.init(tmp_path / "empty"):
        assert git_info(tmp_path / "empty").commit is None


def test_outside_any_repository(tmp_path: Path) -> None:
    """A directory in no repository gives commit None and a clean, empty GitInfo."""
    with pytest.raises(git.InvalidGitRepositoryError):
        git.Repo(
            tmp_path, search_parent_directories=True
        )  # precondition: tmp_path is not in a repo
    assert git_info(tmp_path) == GitInfo(None, False, None, "", (), None)


def test_missing_path_gives_no_repository(tmp_path: Path) -> None:
    """A path that does not exist gives the empty GitInfo instead of raising."""
    assert git_info(tmp_path / "missing").commit is None


def test_pip_freeze_lists_pytest_and_ends_complete() -> None:
    """pip_freeze pins pytest exactly and its last line is whole and newline-terminated."""
    frozen = pip_freeze()
    lines = frozen.splitlines()
    assert f"pytest=={metadata.version('pytest')}" in lines
    assert frozen.endswith("\n")
    name, version = lines[-1].split("==")
    assert version == metadata.version(name)
    assert all(re.fullmatch(r"[^=\s]+==\S+", line) for line in lines)


def test_pip_freeze_is_sorted_case_insensitively() -> None:
    """pip_freeze lines are sorted without regard to case."""
    lines = pip_freeze().splitlines()
    assert lines == sorted(lines, key=str.lower)


def test_platform_info_fields() -> None:
    """platform_info reports every documented field as a non-empty string."""
    info = platform_info()
    keys = {"python_version", "python_implementation", "platform", "machine"}
    assert keys | {"hostname", "user", "executable"} == set(info)
    assert all(isinstance(value, str) and value for value in info.values())


def test_reproduction_line_drops_overwrite_and_store_full_only() -> None:
    """reproduction_line drops --overwrite and --store-full but keeps --overwrite-stage X."""
    line = "experiment run sweep -p sweep --overwrite --overwrite-stage train --store-full"
    assert reproduction_line(line, "data/runs/sweep_3_2024-03-01-T123005") == (
        "experiment run sweep -p sweep --overwrite-stage train"
        " --cache data/runs/sweep_3_2024-03-01-T123005/artifacts --dry-cache"
    )


def test_reproduction_line_leaves_quoted_text_alone() -> None:
    """Flags inside a quoted argument are not tokens and survive unchanged."""
    line = 'experiment run sweep --notes "try --overwrite later" --store-full'
    assert reproduction_line(line, "runs/r") == (
        'experiment run sweep --notes "try --overwrite later" --cache runs/r/artifacts --dry-cache'
    )


def test_run_line_quotes_arguments() -> None:
    """run_line rebuilds a replayable command line from argv."""
    assert run_line(["run", "sweep", "--notes", "two words"]) == (
        "experiment run sweep --notes 'two words'"
    )


def test_reproduction_line_drops_store_full_short_flag_keeps_executors():
    """As curifactory's: -s goes, --parallel N and --dask ADDRESS stay (run serially there)."""
    from curifactory_like.provenance import reproduction_line

    line = reproduction_line(
        "experiment run exp -s -n a --parallel 2 --dask tcp://h:1 --overwrite-stage x", "runs/r"
    )
    assert line == (
        "experiment run exp -n a --parallel 2 --dask tcp://h:1 --overwrite-stage x "
        "--cache runs/r/artifacts --dry-cache"
    )


def _summary_matches_full(path: Path) -> None:
    from curifactory_like.provenance import git_summary

    summary, full = git_summary(path), git_info(path)
    assert (summary.commit, summary.dirty, summary.branch) == (full.commit, full.dirty, full.branch)
    assert summary.root == full.root
    assert summary.diff == "" and summary.untracked == ()


def test_dry_run_summary_agrees_with_full_provenance(repo: git.Repo) -> None:
    """``git_summary`` (used by dry runs and ``experiment map``) gives the same commit, branch
    and dirty flag as the full collection, in every state of the working tree."""
    root = _root(repo)
    _summary_matches_full(root)
    (root / "new.txt").write_text("untracked\n")
    _summary_matches_full(root)
    (root / "new.txt").unlink()
    tracked = next(p for p in root.iterdir() if p.is_file())
    tracked.write_text(tracked.read_text() + "changed\n")
    _summary_matches_full(root)
    repo.git.stash()
    repo.git.checkout(repo.head.commit.hexsha)
    _summary_matches_full(root)


def test_dry_run_summary_outside_a_repository(tmp_path: Path) -> None:
    from curifactory_like.provenance import git_summary

    assert git_summary(tmp_path).commit is None
    assert git_summary(tmp_path).dirty is False
