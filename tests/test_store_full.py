"""--store-full run folders are self-contained, and `experiment reproduce` reruns one from them.

Every test drives the real ``experiment`` command in a throw-away project (a real git repository
where provenance matters) and checks files, the registry and the report it leaves behind.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from _projects import NO_TRACEBACK, calls, output, registry_runs, run_cli, write_source, write_tiny
from _store_full_projects import FULL_EXPERIMENT, FULL_PARAMS

from curifactory_like.caching.atomic import file_checksum


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` (identity set, no global config needed)."""
    result = subprocess.run(
        ["git", "-c", "user.email=test@example.com", "-c", "user.name=Test", *args],
        cwd=root, capture_output=True, text=True, check=True,
    )
    return result.stdout


def full_project(root: Path) -> Path:
    """The store-full experiment in a fresh git repository with one commit."""
    root.mkdir(parents=True, exist_ok=True)
    for package in ("experiments", "params"):
        write_source(root, f"{package}/__init__.py", "")
    write_source(root, "experiments/full.py", FULL_EXPERIMENT)
    write_source(root, "params/full.py", FULL_PARAMS)
    write_source(root, ".gitignore", "data/\nreports/\nlogs/\noutputs/\ncalls.txt\n__pycache__/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


def store_full_run(root: Path, experiment: str = "full", *extra: str) -> Path:
    """Run ``experiment`` with --store-full; return its run folder."""
    result = run_cli(root, "run", experiment, "--store-full", "--quiet", *extra)
    assert result.returncode == 0, output(result)
    folders = sorted((root / "data" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    return folders[-1]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_run_folder_holds_every_artifact_reference_and_provenance(tmp_path: Path) -> None:
    """Templated paths, file references, params (JSON + pickle), git, pip freeze, log, manifest."""
    root = full_project(tmp_path / "proj")
    folder = store_full_run(root)
    artifacts = folder / "artifacts"
    # templated paths: inside the cache keep their place, outside go below _project/
    assert len(list((artifacts / "exports").glob("a_*_export.txt"))) == 1
    assert len(list((artifacts / "_project" / "outputs").glob("b_*_note.json"))) == 1
    # file references are rewritten relative to the stored reference file, and point inside
    reference = next(artifacts.glob("full_*_write_files_files.json"))
    stored = json.loads(reference.read_text())
    assert all(not Path(p).is_absolute() and "data/cache" not in p for p in stored)
    assert all((reference.parent / p).is_file() for p in stored)
    original = json.loads(next((root / "data" / "cache").glob("full_*_write_files_files.json"))
                          .read_text())
    assert all("data/cache" in p for p in original)  # the cache's own copy is untouched
    # parameter sets: readable and exact
    params = json.loads((folder / "params" / "param_sets.json").read_text())
    assert [(p["name"], p["values"]["n"]) for p in params["param_sets"]] == [("a", 2), ("b", 3)]
    assert (folder / "params" / "param_sets.pkl").stat().st_size > 0
    # provenance: full commit, complete pip freeze, platform, log, report
    head = git(root, "rev-parse", "HEAD").strip()
    assert (folder / "git" / "commit.txt").read_text().split()[0] == head
    freeze = (folder / "requirements.txt").read_text()
    assert re.search(r"^pandas==\S+$", freeze, re.M) and freeze.endswith("\n")
    assert json.loads((folder / "platform.json").read_text())["python_version"]
    assert "Stage load executing" in (folder / "log.txt").read_text()
    assert (folder / "report" / "index.html").is_file()
    # the manifest lists every file with its real size and checksum; run_info.json includes it
    manifest = json.loads((folder / "manifest.json").read_text())
    listed = {entry["path"]: entry for entry in manifest["files"]}
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"manifest.json", "run_info.json"}
    for path, entry in listed.items():
        assert entry["checksum"] == file_checksum(str(folder / path))
        assert entry["size"] == (folder / path).stat().st_size
    run_info = json.loads((folder / "run_info.json").read_text())
    assert run_info["reference"] == folder.name and run_info["manifest"] == manifest
    assert {(a["stage"], a["name"]) for a in manifest["artifacts"]} >= {
        ("load", "data"), ("write_files", "files"), ("export", "summary"), ("export", "note"),
        ("combine", "table"),
    }
    assert [a["pickled"] for a in manifest["artifacts"] if a["name"] == "data"] == [True, True]


def test_copied_run_folder_reproduces_with_no_stage_executed(tmp_path: Path) -> None:
    """The issue's end-to-end case: copy the folder away, delete cache and reports, reproduce."""
    root = full_project(tmp_path / "proj")
    folder = store_full_run(root)
    moved = tmp_path / "elsewhere" / folder.name
    shutil.copytree(folder, moved)
    for gone in (root / "data" / "cache", root / "data" / "runs", root / "reports",
                 root / "outputs"):
        shutil.rmtree(gone)
    (root / "calls.txt").unlink()
    before = snapshot(moved)

    result = run_cli(root, "reproduce", str(moved), "--quiet")

    text = output(result)
    assert result.returncode == 0, text
    assert calls(root) == {}  # no stage executed
    assert "0 executed, 7 loaded or skipped" in text
    files = len(json.loads((moved / "manifest.json").read_text())["files"])
    assert f"{files} files verified before, {files} after the run" in text
    assert "reportables: 3 of 3 present" in text
    assert snapshot(moved) == before  # read only
    assert not (root / "data" / "cache").exists() and not (root / "outputs").exists()
    # pickles are announced with where they come from
    assert f"Loading the pickled parameter sets from {moved}/params/param_sets.pkl" in text
    assert f"2 pickled artifact(s) may be loaded from {moved}/artifacts" in text
    # the new report has the same reportables and links back to the original run
    runs = registry_runs(root)
    new = runs[-1]
    assert new["info"]["reproduced_from"] == folder.name
    page = (root / "reports" / new["reference"] / "index.html").read_text()
    for name in ("a_load_meta_table", "b_load_meta_table", "(Aggregate)_combine_combined_view"):
        assert name in page
    assert "combined 2" in page
    link = re.search(r'id="original-report" href="([^"]+)"', page)
    assert link is not None
    target = root / "reports" / new["reference"] / link.group(1)
    assert target.read_bytes() == (moved / "report" / "index.html").read_bytes()
    assert f"<code>{moved}</code>" in page


def test_reproduce_by_reference_from_the_runs_folder(tmp_path: Path) -> None:
    """A reference (or its unique start) names a folder of the project's runs folder."""
    root = write_tiny(tmp_path / "proj")
    folder = store_full_run(root, "tiny", "-p", "tiny")
    result = run_cli(root, "reproduce", folder.name.rsplit("_", 1)[0], "--quiet")
    assert result.returncode == 0, output(result)
    assert f"of run {folder.name}: complete" in result.stdout
    unknown = run_cli(root, "reproduce", "nope_7", "--quiet")
    assert unknown.returncode == 2
    assert "no --store-full run folder 'nope_7'" in output(unknown)
    assert NO_TRACEBACK not in output(unknown)


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_damaged_run_folder_is_refused_naming_the_file(tmp_path: Path, damage: str) -> None:
    """A missing or truncated artifact stops the reproduction before anything runs."""
    root = write_tiny(tmp_path / "proj")
    folder = store_full_run(root, "tiny", "-p", "tiny")
    victim = next((folder / "artifacts").glob("tiny_*_double_y.json"))
    relative = str(victim.relative_to(folder))
    size = victim.stat().st_size
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[: size // 2])
    shutil.rmtree(root / "data" / "cache")
    (root / "calls.txt").unlink()

    result = run_cli(root, "reproduce", str(folder))

    text = output(result)
    assert result.returncode == 2, text
    assert relative in text
    assert ("is missing" if damage == "missing" else "is truncated") in text
    assert f"{size} bytes" in text
    assert NO_TRACEBACK not in text
    assert calls(root) == {}


def test_dirty_tree_is_stored_as_patch_and_never_applied(tmp_path: Path) -> None:
    """Uncommitted changes become a patch, untracked files a list; reproduce only tells."""
    root = write_tiny(tmp_path / "proj")
    write_source(root, ".gitignore", "data/\nreports/\nlogs/\ncalls.txt\n__pycache__/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    committed = (root / "params" / "tiny.py").read_text()
    (root / "params" / "tiny.py").write_text(committed + "\n# tuned by hand\n")
    (root / "scratch_notes.txt").write_text("an untracked file\n")
    folder = store_full_run(root, "tiny", "-p", "tiny")
    patch = (folder / "git" / "uncommitted.patch").read_text()
    assert "+# tuned by hand" in patch and "params/tiny.py" in patch
    assert (folder / "git" / "untracked.txt").read_text().splitlines() == ["scratch_notes.txt"]

    git(root, "checkout", "--", "params/tiny.py")
    (root / "scratch_notes.txt").unlink()
    (root / "README.md").write_text("later work\n")
    git(root, "add", "README.md")
    git(root, "commit", "-qm", "later")
    result = run_cli(root, "reproduce", folder.name, "--quiet")

    text = output(result)
    assert result.returncode == 0, text
    assert f"stored in {folder.relative_to(root)}/git/uncommitted.patch and were NOT applied" in text
    assert "scratch_notes.txt" in text
    stored_commit = (folder / "git" / "commit.txt").read_text().split()[0]
    head = git(root, "rev-parse", "HEAD").strip()
    assert f"git commit differs: the run was made at {stored_commit}" in text and head in text
    assert (root / "params" / "tiny.py").read_text() == committed  # nothing applied
    assert not (root / "scratch_notes.txt").exists()
    assert git(root, "status", "--porcelain") == ""
    page = next((root / "reports").glob("tiny_2_*/index.html")).read_text()
    assert "uncommitted.patch" in page and "git commit differs" in page


def test_package_differences_are_listed() -> None:
    """Changed, added and removed packages each get a line."""
    from curifactory_like.runstore.environment import package_differences

    lines = package_differences(
        "numpy==1.26.0\npandas==2.1.0\nold_pkg==0.1\n", "numpy==1.26.0\npandas==2.2.3\nnew-pkg==3\n"
    )
    assert lines == [
        "  + new-pkg==3 (not installed for the run)",
        "  - old_pkg==0.1 (not installed now)",
        "  ~ pandas: 2.1.0 -> 2.2.3",
    ]


def test_reproduce_from_param_files_rebuilds_sets_without_unpickling(tmp_path: Path) -> None:
    """--from-param-files does not load the pickle and warns when a set's hash changed."""
    root = write_tiny(tmp_path / "proj")
    folder = store_full_run(root, "tiny", "-p", "tiny", "--names", "a", "--names", "b")
    (root / "params" / "tiny.py").write_text(
        (root / "params" / "tiny.py").read_text().replace('name="b", n=2', 'name="b", n=20')
    )
    (root / "calls.txt").unlink()
    result = run_cli(root, "reproduce", folder.name, "--from-param-files", "--quiet")
    text = output(result)
    assert result.returncode == 0, text
    assert "pickled parameter sets" not in text
    assert "parameter set 'b' now hashes to" in text
    assert calls(root) == {"make b": 1, "double b": 1, "square b": 1}  # only b had to run
    assert "stage calls: 3 executed [make (Record 1 (b)), double (Record 1 (b))" in text
    page = next((root / "reports").glob("tiny_2_*/index.html")).read_text()
    assert "Executed (not in the run folder): <code>make</code> of Record 1 (b)" in page


def test_stored_parameter_sets_do_not_depend_on_the_parameter_file(tmp_path: Path) -> None:
    """Values come from the pickle; a deleted parameter class is recreated from its by-value copy."""
    root = write_tiny(tmp_path / "proj")
    folder = store_full_run(root, "tiny", "-p", "tiny", "--names", "b")
    (root / "params" / "tiny.py").write_text(
        (root / "params" / "tiny.py").read_text().replace('name="b", n=2', 'name="b", n=99')
    )
    (root / "calls.txt").unlink()
    changed = run_cli(root, "reproduce", folder.name, "--quiet")
    assert changed.returncode == 0, output(changed)
    assert calls(root) == {}  # the stored n=2, not the file's n=99

    (root / "params" / "tiny.py").unlink()
    (root / "params" / "more.py").unlink()
    gone = run_cli(root, "reproduce", folder.name, "--quiet")
    text = output(gone)
    assert gone.returncode == 0, text
    assert "loading the parameter sets with their pickled classes from" in text
    assert "param_sets_by_value.pkl" in text
    assert calls(root) == {}


def test_reproduce_lists_package_differences(tmp_path: Path) -> None:
    """A package installed after the run is named in a warning; the run still reproduces."""
    root = write_tiny(tmp_path / "proj")
    folder = store_full_run(root, "tiny", "-p", "tiny", "--names", "a")
    assert "cfl-probe-package" not in (folder / "requirements.txt").read_text()
    info = root / "cfl_probe_package-1.5.dist-info"  # the project folder is on sys.path
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cfl-probe-package\nVersion: 1.5\n")
    result = run_cli(root, "reproduce", folder.name, "--quiet")
    text = output(result)
    assert result.returncode == 0, text
    assert "WARNING: installed packages differ from the run's" in text
    assert "+ cfl-probe-package==1.5 (not installed for the run)" in text


def test_reproduce_outside_the_project_is_bad_input(tmp_path: Path) -> None:
    """Without the experiment code in the working directory the error says what is missing."""
    root = write_tiny(tmp_path / "proj")
    folder = store_full_run(root, "tiny", "-p", "tiny", "--names", "a")
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    result = run_cli(elsewhere, "reproduce", str(folder), "--quiet")
    text = output(result)
    assert result.returncode == 2, text
    assert "experiment 'tiny' not found" in text and NO_TRACEBACK not in text


def test_run_reference_prefixes_resolve_to_one_folder(tmp_path: Path) -> None:
    """`tiny_1` names run 1 even when run 10 exists; an ambiguous start is refused."""
    from curifactory_like.errors import RunFolderError
    from curifactory_like.runstore.reproduce import resolve_run_folder

    runs = tmp_path / "runs"
    for name in ("tiny_1_2026-01-01-T000000", "tiny_10_2026-01-02-T000000"):
        (runs / name).mkdir(parents=True)
    assert Path(resolve_run_folder("tiny_1", str(runs))).name == "tiny_1_2026-01-01-T000000"
    assert Path(resolve_run_folder("tiny_10", str(runs))).name == "tiny_10_2026-01-02-T000000"
    with pytest.raises(RunFolderError, match="no --store-full run folder 'tiny'") as caught:
        resolve_run_folder("tiny", str(runs))
    assert "several runs start with 'tiny'" in str(caught.value.hint)


ABSOLUTE_PATH_EXPERIMENT = '''\
"""A templated path that is absolute: the project directory at import time."""

import os

import curifactory_like as cf
from curifactory_like.caching import JsonCacher

OUT = os.path.join(os.getcwd(), "outputs", "{params.name}_{hash}.json")


@cf.stage(outputs=["x"], cachers=[JsonCacher(path_override=OUT)])
def make(record):
    with open("calls.txt", "a", encoding="utf-8") as calls:
        calls.write(f"make {record.params.name}\\\\n")
    return record.params.n


def run(param_sets, manager):
    for param_set in param_sets:
        make(cf.Record(manager, param_set))
'''


def test_moved_project_reproduces_absolute_templated_paths(tmp_path: Path) -> None:
    """Project and run folder moved elsewhere: absolute templated paths still load from the folder."""
    root = write_tiny(tmp_path / "proj")
    write_source(root, "experiments/absolute.py", ABSOLUTE_PATH_EXPERIMENT)
    folder = store_full_run(root, "absolute", "-p", "tiny", "--names", "a")
    stored = sorted(p.name for p in (folder / "artifacts" / "_project" / "outputs").iterdir())
    assert [name.endswith("_metadata.json") for name in stored] == [False, True]
    moved = tmp_path / "machine2" / "proj"
    moved.mkdir(parents=True)
    for name in ("experiments", "params"):
        shutil.copytree(root / name, moved / name)
    shutil.copytree(folder, tmp_path / "machine2" / folder.name)
    shutil.rmtree(root)

    result = run_cli(moved, "reproduce", str(tmp_path / "machine2" / folder.name), "--quiet")

    text = output(result)
    assert result.returncode == 0, text
    assert "0 executed, 1 loaded or skipped" in text
    assert calls(moved) == {}
    assert not (moved / "outputs").exists() and not root.exists()


SELF_WRITING_EXPERIMENT = '''\
"""A stage without cacher that writes a file of its own into the cache folder."""

import time

import curifactory_like as cf
from curifactory_like.caching import JsonCacher


@cf.stage(outputs=["x"], cachers=[JsonCacher])
def make(record):
    return record.params.n


@cf.stage(inputs=["x"], outputs=["stamp_file"])
def stamp(record, x):
    path = record.get_path("stamp.txt")
    with open(path, "w", encoding="utf-8") as out:
        out.write(str(time.time_ns()))
    return path


def run(param_sets, manager):
    for param_set in param_sets:
        stamp(make(cf.Record(manager, param_set)))
'''


def test_stage_writing_into_the_run_folder_is_reported(tmp_path: Path) -> None:
    """A reproduction that changed the run folder says so, in the summary and by exit 1."""
    root = write_tiny(tmp_path / "proj")
    write_source(root, "experiments/selfwriting.py", SELF_WRITING_EXPERIMENT)
    folder = store_full_run(root, "selfwriting", "-p", "tiny", "--names", "a")
    stored = next((folder / "artifacts").glob("*_stamp_stamp.txt"))
    result = run_cli(root, "reproduce", folder.name, "--quiet")
    text = output(result)
    assert result.returncode == 1, text
    assert "the run folder CHANGED during the run" in text
    assert f"{stored.relative_to(folder)} is " in text
