"""Where a run came from: git state, installed packages, conda environment, host, and how to rerun.

Unlike curifactory, nothing here is stored one character short: the commit is the full 40-char
hash, ``pip_freeze`` keeps its last line whole, and the uncommitted ``git diff`` is captured.
Collecting provenance never fails a run: :func:`git_info` answers "no repository" rather than
raising, and :func:`conda_environment` answers None.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import CurifactoryWarning

__all__ = [
    "GitInfo",
    "conda_environment",
    "git_info",
    "pip_freeze",
    "platform_info",
    "reproduction_line",
    "run_line",
]

CONDA_TIMEOUT_SECONDS = 120.0
"""How long ``conda env export`` may take before it is abandoned."""

_DROPPED_FLAGS = frozenset({"--overwrite", "--store-full", "-s", "--dry-cache"})
# options whose value is the next token. Executor options stay, as in curifactory: a run with
# --dry-cache runs serially anyway (see run_experiment)
_DROPPED_OPTIONS = frozenset({"--cache", "-c"})


@dataclass(frozen=True)
class GitInfo:
    """The state of the git working tree a run started from."""

    commit: str | None  # full 40-char hexsha; None outside a repository or before the first commit
    dirty: bool  # unstaged or staged changes, or untracked (not ignored) files
    branch: str | None  # None when HEAD is detached or there is no repository
    diff: str  # ``git diff HEAD``: staged and unstaged changes to tracked files ("" if none)
    untracked: tuple[str, ...]  # untracked, not ignored files, relative to ``root``
    root: str | None  # the working tree root


NO_GIT = GitInfo(commit=None, dirty=False, branch=None, diff="", untracked=(), root=None)
"""The :class:`GitInfo` of a directory that is not in a git repository."""


def git_info(path: str | os.PathLike[str] = ".") -> GitInfo:
    """Describe the git repository containing ``path`` (searching parent directories).

    Three ``git`` calls: the root, commit and branch; ``git status --porcelain`` for the dirty
    flag and the untracked files; ``git diff HEAD``. Never raises: without a repository or
    without the git executable it returns :data:`NO_GIT`; an unexpected git failure (e.g. git
    refusing a repository it distrusts) also warns with :class:`CurifactoryWarning`.
    """
    return _read_git(path, with_diff=True)


def git_summary(path: str | os.PathLike[str] = ".") -> GitInfo:
    """:func:`git_info` without the diff (one ``git`` call fewer) and without the untracked list.

    For runs that record nothing (``--dry``, ``experiment map``): they show and warn about the
    commit and a dirty tree, but store no diff or untracked list.
    """
    info = _read_git(path, with_diff=False)
    return dataclasses.replace(info, untracked=())


_NOT_A_WORK_TREE = ("not a git repository", "must be run in a work tree")
"""What git says (in English: ``_git`` sets ``LC_ALL=C``) when there is no working tree to describe."""


class _GitFailed(Exception):
    """A ``git`` call that failed for another reason than "no repository here"."""


def _git(arguments: list[str], where: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *arguments], cwd=where, capture_output=True, text=True,
        encoding="utf-8", errors="replace", timeout=30, check=False,
        env={**os.environ, "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"},
    )


def _read_git(path: str | os.PathLike[str], with_diff: bool) -> GitInfo:
    where = os.fspath(path)
    if shutil.which("git") is None or not os.path.isdir(where):
        return NO_GIT
    try:
        return _describe(where, with_diff)
    except (OSError, subprocess.SubprocessError, _GitFailed, ValueError) as exc:
        _warn_git(path, exc)
        return NO_GIT


def _describe(where: str, with_diff: bool) -> GitInfo:
    head = _git(["rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD"], where)
    if head.returncode == 0:
        root, commit, branch_or_head = head.stdout.splitlines()
        branch = None if branch_or_head == "HEAD" else branch_or_head
    else:  # no repository here, or one without a commit yet
        top = _git(["rev-parse", "--show-toplevel"], where)
        if top.returncode != 0:
            if any(reason in top.stderr for reason in _NOT_A_WORK_TREE):
                return NO_GIT
            raise _GitFailed(top.stderr.strip())
        root, commit = top.stdout.strip(), None
        branch = _git(["symbolic-ref", "-q", "--short", "HEAD"], where).stdout.strip() or None
    status = _git(["status", "--porcelain", "-z", "--untracked-files=all"], root)
    if status.returncode != 0:
        raise _GitFailed(status.stderr.strip())
    untracked = _untracked_paths(status.stdout)
    diff = ""
    if with_diff and commit is not None:
        changes = _git(["diff", "HEAD", "--no-color", "--no-ext-diff"], root)
        if changes.returncode != 0:
            raise _GitFailed(changes.stderr.strip())
        diff = changes.stdout
    return GitInfo(
        commit=commit,
        dirty=bool(status.stdout),
        branch=branch,
        diff=diff,
        untracked=untracked,
        root=root,
    )


def _untracked_paths(porcelain_z: str) -> tuple[str, ...]:
    """The ``??`` entries of ``git status --porcelain -z`` (a rename's entry is followed by its
    old path, which is skipped)."""
    untracked: list[str] = []
    entries = iter(porcelain_z.split("\0"))
    for entry in entries:
        if entry.startswith("?? "):
            untracked.append(entry[3:])
        elif "R" in entry[:2] or "C" in entry[:2]:
            next(entries, None)
    return tuple(untracked)


def _warn_git(path: str | os.PathLike[str], exc: Exception) -> None:
    """Warn that the git state of ``path`` could not be read."""
    warnings.warn(
        f"could not read the git state of {os.fspath(path)!r} ({type(exc).__name__}: {exc}); "
        "the run is recorded without a commit. Check `git status` works in that directory.",
        CurifactoryWarning,
        stacklevel=3,
    )


def pip_freeze() -> str:
    """Return ``name==version`` for every installed distribution, one per line, sorted.

    Read from package metadata (no ``pip`` subprocess); the first distribution of a name on
    ``sys.path`` wins, as for imports. The text ends with a newline and is never truncated.
    """
    from importlib import metadata  # imports ``email``: only runs that record packages pay it

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name, version = dist.metadata["Name"], dist.version
        if not name or not version:  # broken metadata: nothing to pin
            continue
        key = name.lower().replace("_", "-").replace(".", "-")
        found.setdefault(key, f"{name}=={version}")
    lines = sorted(found.values(), key=str.lower)
    return "".join(line + "\n" for line in lines)


def conda_environment() -> str | None:
    """Return ``conda env export --from-history`` for the active conda environment, else None.

    None when ``CONDA_PREFIX`` is unset, no ``conda``/``mamba`` executable is on ``PATH``, or the
    export fails or takes longer than :data:`CONDA_TIMEOUT_SECONDS`.
    """
    if not os.environ.get("CONDA_PREFIX"):
        return None
    exe = shutil.which("conda") or shutil.which("mamba")
    if exe is None:
        return None
    try:
        result = subprocess.run(
            [exe, "env", "export", "--from-history"],
            capture_output=True,
            text=True,
            timeout=CONDA_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def platform_info() -> dict[str, str]:
    """Return the interpreter, operating system, machine, host and user running this process."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (e.g. a container uid without passwd entry)
        user = os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "user": user,
        "executable": sys.executable,
    }


def run_line(argv: Sequence[str] | None = None, program: str = "experiment") -> str:
    """Return the command line that started this run, quoted so a shell can replay it."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join([program, *args])


def reproduction_line(run_line: str, run_folder: str) -> str:
    """Return the command that reruns a ``--store-full`` run from its own folder.

    The ``--overwrite`` and ``--store-full``/``-s`` tokens are dropped (whole tokens only, so
    ``--overwrite-stage X`` stays), as are any earlier ``--cache X``/``--dry-cache``, and
    ``--cache <run_folder>/artifacts --dry-cache`` is appended (curifactory's line, so executor
    options such as ``--parallel 4`` stay; with ``--dry-cache`` they run serially). Quoting is
    kept as written. ``experiment reproduce REF`` is the better way to rerun a stored run.
    """
    kept: list[str] = []
    tokens = iter(_split_raw(run_line))
    for token in tokens:
        if token in _DROPPED_FLAGS:
            continue
        if token in _DROPPED_OPTIONS:
            next(tokens, None)
            continue
        if token.split("=", 1)[0] in _DROPPED_OPTIONS:
            continue
        kept.append(token)
    kept += ["--cache", shlex.quote(f"{run_folder}/artifacts"), "--dry-cache"]
    return " ".join(kept)


def _split_raw(line: str) -> list[str]:
    """Split a shell line at unquoted whitespace, keeping each token's quotes and escapes."""
    tokens: list[str] = []
    current: list[str] = []
    quote: str | None = None
    chars = iter(line)
    for char in chars:
        if quote is None and char.isspace():
            if current:
                tokens.append("".join(current))
                current = []
            continue
        current.append(char)
        if char == "\\" and quote != "'":
            current.append(next(chars, ""))
        elif quote is None and char in "'\"":
            quote = char
        elif char == quote:
            quote = None
    if current:
        tokens.append("".join(current))
    return tokens
