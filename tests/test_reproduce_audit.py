"""`experiment reproduce --audit`: every stage re-executed, every artifact compared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from _projects import (
    TINY_PARAMS,
    calls,
    expected_calls,
    output,
    registry_runs,
    run_cli,
    write_source,
    write_tiny,
)
from _store_full_projects import CLOCK_EXPERIMENT
from test_store_full import full_project, snapshot, store_full_run


def clock_project(root: Path, nondeterministic: bool) -> Path:
    for package in ("experiments", "params"):
        write_source(root, f"{package}/__init__.py", "")
    flag = ", nondeterministic=True" if nondeterministic else ""
    write_source(root, "experiments/clock.py", CLOCK_EXPERIMENT.format(flag=flag))
    write_source(root, "params/clock.py", TINY_PARAMS)
    return root


def test_deterministic_experiment_passes_the_audit(tmp_path: Path) -> None:
    """Every stage runs again into a scratch cache; all artifacts equal; exit 0."""
    root = write_tiny(tmp_path / "proj")
    folder = store_full_run(root, "tiny", "-p", "tiny")
    (root / "calls.txt").unlink()
    shutil.rmtree(root / "data" / "cache")
    before = snapshot(folder)

    result = run_cli(root, "reproduce", folder.name, "--audit", "--quiet")

    text = output(result)
    assert result.returncode == 0, text
    assert "Audit passed (9 equal)" in text
    assert calls(root) == expected_calls(("make", "double", "square"), "abc")
    assert snapshot(folder) == before
    assert not (root / "data" / "cache").exists()  # the scratch cache is elsewhere, and gone
    rows = [line for line in result.stdout.splitlines() if line.startswith("equal")]
    assert len(rows) == 9
    run = registry_runs(root)[-1]
    assert run["info"]["audit"].startswith("passed")
    page = (root / "reports" / run["reference"] / "index.html").read_text()
    assert page.count('class="audit-ok"') == 9


def test_full_experiment_passes_the_audit_without_touching_the_project(tmp_path: Path) -> None:
    """File references, templated paths in and out of the cache, Lazy and aggregate outputs."""
    root = full_project(tmp_path / "proj")
    folder = store_full_run(root)
    shutil.rmtree(root / "outputs")
    result = run_cli(root, "reproduce", folder.name, "--audit", "--quiet")
    text = output(result)
    assert result.returncode == 0, text
    assert "Audit passed (11 equal)" in text
    assert not (root / "outputs").exists()  # the out-of-cache templated path went to scratch


def test_wall_clock_stage_fails_the_audit(tmp_path: Path) -> None:
    """A stage reading the clock differs; its artifact is reported and the exit status is 1."""
    root = clock_project(tmp_path / "proj", nondeterministic=False)
    folder = store_full_run(root, "clock", "-p", "clock", "--names", "a")

    result = run_cli(root, "reproduce", folder.name, "--audit", "--quiet")

    text = output(result)
    assert result.returncode == 1, text
    assert "Audit FAILED (1 equal, 1 different)" in text
    lines = result.stdout.splitlines()
    assert any(line.split()[:3] == ["different", "stamp", "stamp"] for line in lines)
    assert any(line.split()[:3] == ["equal", "make", "x"] for line in lines)
    run = registry_runs(root)[-1]
    page = (root / "reports" / run["reference"] / "index.html").read_text()
    assert 'class="audit-fail"' in page and "Audit: FAILED" in page


def test_nondeterministic_stage_is_reported_but_passes(tmp_path: Path) -> None:
    """Marked nondeterministic=True, the same difference is shown and the audit passes."""
    root = clock_project(tmp_path / "proj", nondeterministic=True)
    folder = store_full_run(root, "clock", "-p", "clock", "--names", "a")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {a["stage"]: a["nondeterministic"] for a in manifest["artifacts"]} == {
        "make": False, "stamp": True,
    }

    result = run_cli(root, "reproduce", folder.name, "--audit", "--quiet")

    text = output(result)
    assert result.returncode == 0, text
    assert "Audit passed (1 equal, 1 different)" in text
    assert "different (nondeterministic)  stamp" in result.stdout


def test_audit_after_marking_the_stage_in_the_current_code(tmp_path: Path) -> None:
    """The flag is read from the current code: marking the stage later makes the audit pass."""
    root = clock_project(tmp_path / "proj", nondeterministic=False)
    folder = store_full_run(root, "clock", "-p", "clock", "--names", "a")
    assert run_cli(root, "reproduce", folder.name, "--audit", "--quiet").returncode == 1
    clock_project(root, nondeterministic=True)
    assert run_cli(root, "reproduce", folder.name, "--audit", "--quiet").returncode == 0
