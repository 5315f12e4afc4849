"""How the current environment differs from the one a stored run was made in.

Differences are warnings, never failures: a reproduction on a newer pandas may still be right,
and the audit is the way to find out. A dirty tree at run time is described (where its patch
is kept, which files were untracked); the patch is never applied by curifactory_like.
"""

from __future__ import annotations

import os
from typing import Any

from .. import provenance
from . import layout


def environment_differences(folder: str, run_info: dict[str, Any]) -> list[str]:
    """Human-readable differences between the stored run's environment and this one."""
    notes: list[str] = []
    notes.extend(_git_differences(folder, run_info))
    notes.extend(_package_differences(folder))
    stored_python = run_info.get("python")
    current_python = provenance.platform_info().get("python_version")
    if stored_python and stored_python != current_python:
        notes.append(f"Python differs: the run used {stored_python}, this is {current_python}")
    return notes


def _git_differences(folder: str, run_info: dict[str, Any]) -> list[str]:
    notes = []
    stored = str(run_info.get("commit") or "")
    if stored in ("", "No git repository found"):
        stored = ""
    current = provenance.git_info(os.getcwd())
    if stored and current.commit != stored:
        now = current.commit or "no git repository here"
        notes.append(
            f"git commit differs: the run was made at {stored}, the working tree is at {now}; "
            f"`git checkout {stored}` for the exact code"
        )
    elif not stored and current.commit:
        notes.append("the run was not made in a git repository; its code version is unknown")
    if current.dirty:
        notes.append("the current working tree has uncommitted changes")
    patch = layout.read_text(folder, layout.PATCH)
    if patch:
        notes.append(
            f"the run was made with uncommitted changes ({len(patch.splitlines())} diff lines); "
            f"they are stored in {os.path.join(folder, layout.PATCH)} and were NOT applied. "
            f"To reproduce them: `git checkout {stored or '<commit>'} && git apply "
            f"{os.path.join(folder, layout.PATCH)}`"
        )
    untracked = [line for line in layout.read_text(folder, layout.UNTRACKED).splitlines() if line]
    if untracked:
        shown = ", ".join(untracked[:20]) + (" ..." if len(untracked) > 20 else "")
        notes.append(
            f"{len(untracked)} file(s) were untracked when the run was made (listed in "
            f"{os.path.join(folder, layout.UNTRACKED)}, not stored): {shown}"
        )
    return notes


def _parse_freeze(text: str) -> dict[str, str]:
    packages = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            packages[name.lower().replace("_", "-").replace(".", "-")] = f"{name}=={version}"
    return packages


def package_differences(stored_freeze: str, current_freeze: str) -> list[str]:
    """``name: stored -> current`` lines for packages that changed, appeared or disappeared."""
    stored, current = _parse_freeze(stored_freeze), _parse_freeze(current_freeze)
    lines = []
    for key in sorted(set(stored) | set(current)):
        before, after = stored.get(key), current.get(key)
        if before == after:
            continue
        if before is None:
            lines.append(f"  + {after} (not installed for the run)")
        elif after is None:
            lines.append(f"  - {before} (not installed now)")
        else:
            lines.append(f"  ~ {before.split('==')[0]}: {before.split('==')[1]} -> "
                         f"{after.split('==')[1]}")
    return lines


def _package_differences(folder: str) -> list[str]:
    stored = layout.read_text(folder, layout.REQUIREMENTS)
    if not stored:
        return []
    lines = package_differences(stored, provenance.pip_freeze())
    if not lines:
        return []
    return [
        f"installed packages differ from the run's {os.path.join(folder, layout.REQUIREMENTS)} "
        f"({len(lines)} difference(s)):\n" + "\n".join(lines)
    ]
