"""`experiment export` / `experiment import`: a run folder moved between projects as one file."""

from __future__ import annotations

import io
import shutil
import tarfile
import time
from datetime import datetime
from pathlib import Path

import pytest
from _projects import NO_TRACEBACK, calls, output, registry_runs, run_cli, write_tiny
from test_store_full import snapshot, store_full_run


def test_export_import_round_trip(tmp_path: Path) -> None:
    """The imported run is registered, indexed, byte-identical, and reproduces with no stage run."""
    source = write_tiny(tmp_path / "source")
    folder = store_full_run(source, "tiny", "-p", "tiny")
    archive = tmp_path / "run.tar.gz"
    exported = run_cli(source, "export", folder.name, str(archive))
    assert exported.returncode == 0, output(exported)
    assert f"exported run {folder.name}" in exported.stdout

    target = write_tiny(tmp_path / "target")
    imported = run_cli(target, "import", str(archive))

    assert imported.returncode == 0, output(imported)
    assert f"imported run {folder.name}" in imported.stdout
    landed = target / "data" / "runs" / folder.name
    assert snapshot(landed) == snapshot(folder)
    assert [r["reference"] for r in registry_runs(target)] == [folder.name]
    listing = run_cli(target, "runs")
    assert folder.name[:12] in listing.stdout
    index = (target / "reports" / "index.html").read_text()
    assert f'href="{folder.name}/index.html"' in index
    assert (target / "reports" / folder.name / "index.html").is_file()

    reproduced = run_cli(target, "reproduce", folder.name, "--quiet")
    assert reproduced.returncode == 0, output(reproduced)
    assert calls(target) == {}
    assert "0 executed" in reproduced.stdout


def _exported_run(tmp_path: Path) -> tuple[Path, Path]:
    """A store-full run of a tiny project in ``tmp_path/source``, and its exported archive."""
    source = write_tiny(tmp_path / "source")
    folder = store_full_run(source, "tiny", "-p", "tiny")
    archive = tmp_path / "run.tar.gz"
    assert run_cli(source, "export", str(folder), str(archive)).returncode == 0
    return folder, archive


def test_import_keeps_reference_when_run_number_is_taken(tmp_path: Path) -> None:
    """A project with its own run 1 still takes the import, under the next free number."""
    folder, archive = _exported_run(tmp_path)
    target = write_tiny(tmp_path / "target")
    _wait_for_next_second(folder.name)  # a run's reference is its name, number and second
    assert run_cli(target, "run", "tiny", "-p", "tiny", "--quiet").returncode == 0

    imported = run_cli(target, "import", str(archive))

    assert imported.returncode == 0, output(imported)
    assert "registered as 2" in imported.stdout
    runs = {r["reference"]: r for r in registry_runs(target)}
    assert runs[folder.name]["run_number"] == 2
    assert runs[folder.name]["info"]["original_run_number"] == 1
    again = run_cli(target, "import", str(archive))
    assert again.returncode == 2
    assert "already here" in output(again) and NO_TRACEBACK not in output(again)
    assert len(registry_runs(target)) == 2


def test_import_refuses_a_reference_the_registry_already_has(tmp_path: Path) -> None:
    """A registered run whose folder was removed blocks a re-import, with a hint, losing nothing."""
    folder, archive = _exported_run(tmp_path)
    target = write_tiny(tmp_path / "target")
    assert run_cli(target, "import", str(archive)).returncode == 0
    shutil.rmtree(target / "data" / "runs" / folder.name)
    before = registry_runs(target)

    again = run_cli(target, "import", str(archive))

    assert again.returncode == 2
    assert f"already has a run named {folder.name}" in output(again)
    assert "experiment runs" in output(again) and NO_TRACEBACK not in output(again)
    assert registry_runs(target) == before
    assert not (target / "data" / "runs" / folder.name).exists()
    assert [p.name for p in (target / "data" / "runs").iterdir()] == []


def _wait_for_next_second(reference: str) -> None:
    """Sleep until the clock is past the second in ``reference`` (``name_N_YYYY-MM-DD-THHMMSS``)."""
    stamp = datetime.strptime(reference.rsplit("_", 1)[1], "%Y-%m-%d-T%H%M%S")
    while datetime.now().replace(microsecond=0) <= stamp:
        time.sleep(0.05)


def test_export_refuses_a_damaged_run(tmp_path: Path) -> None:
    """A run folder that no longer matches its manifest is not exported."""
    root = write_tiny(tmp_path / "proj")
    folder = store_full_run(root, "tiny", "-p", "tiny")
    next((folder / "artifacts").glob("*_square_z.json")).unlink()
    result = run_cli(root, "export", folder.name, str(tmp_path / "run.tar.gz"))
    assert result.returncode == 2
    assert "square_z.json is missing" in output(result)
    assert not (tmp_path / "run.tar.gz").exists()


def _archive(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            data = b"evil\n" if member.isfile() else None
            if data is not None:
                member.size = len(data)
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([_file("run/ok.txt"), _file("run/../../escaped.txt")], "contains '..'"),
        ([_file("/tmp/absolute_escape.txt")], "has an absolute path"),
        ([_file("run/ok.txt"), _link("run/passwd", "/etc/passwd")], "absolute path '/etc/passwd'"),
        ([_file("run/ok.txt"), _link("run/up", "../../outside")], "pointing outside"),
        ([_file("run/ok.txt"), _link("run/hard", "other/file", hard=True)], "pointing outside"),
        ([_file("run/a.txt"), _file("other/b.txt")], "holds 2 top-level entries"),
    ],
)
def test_import_refuses_unsafe_archives(
    tmp_path: Path, members: list[tarfile.TarInfo], reason: str
) -> None:
    """Traversal, absolute paths and escaping links are refused before anything is extracted."""
    root = write_tiny(tmp_path / "proj")
    archive = _archive(tmp_path / "evil.tar.gz", *members)
    result = run_cli(root, "import", str(archive))
    text = output(result)
    assert result.returncode == 2, text
    assert reason in text and NO_TRACEBACK not in text
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/absolute_escape.txt").exists()
    runs = root / "data" / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []
    assert registry_runs(root) == []


def test_import_refuses_what_is_not_a_run_archive(tmp_path: Path) -> None:
    """A tar without a manifest, or not a tar at all, is refused clearly."""
    root = write_tiny(tmp_path / "proj")
    plain = _archive(tmp_path / "plain.tar.gz", _file("run/readme.txt"))
    result = run_cli(root, "import", str(plain))
    assert result.returncode == 2 and "manifest.json is missing" in output(result)
    junk = tmp_path / "junk.tar.gz"
    junk.write_text("not an archive")
    result = run_cli(root, "import", str(junk))
    assert result.returncode == 2 and "is not a tar archive" in output(result)
    assert not list((root / "data" / "runs").iterdir())
    shutil.rmtree(root / "data" / "runs")
