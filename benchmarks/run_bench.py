#!/usr/bin/env python3
"""Side-by-side benchmark: curifactory_like vs curifactory 0.20.5.

Runs the workload of shared/bench/WORKLOAD.md (the ``bench`` experiment, 4N+1
stages) in both frameworks for several N and scenarios, times whole processes,
checks that both frameworks compute the same ``best`` result, and writes a
markdown table of medians and ratios (plus a JSON with every raw sample) to
benchmarks/results/.

    python benchmarks/run_bench.py --quick
    python benchmarks/run_bench.py [--n 10 100 1000] [--scenarios cold warm warm_noreport ...]
                                   [--repeats 3] [--frameworks curifactory_like curifactory]
                                   [--out benchmarks/results/]
    python benchmarks/run_bench.py --list-scenarios

See benchmarks/README.md. Standard library only; curifactory itself is
installed by this script into its own virtual environment (outside the repo).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
WORKLOAD_DIR = HERE / "workload"
DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "bench"

CF = "curifactory"
OURS = "curifactory_like"
ALL_FRAMEWORKS = (OURS, CF)
CF_VERSION = "0.20.5"

EXP_ARGS = ["bench", "-p", "bench_params"]
STATE_DIRS = ("data", "reports", "logs", "notebooks")  # what a run may create in the project
SNAPSHOT_DIRS = ("data", "reports", "logs")  # WORKLOAD.md section 5

# modules imported by the "import floor" baseline (the framework's own modules that
# exist are imported; WORKLOAD.md section 5 uses cli, experiment, manager)
IMPORT_FLOOR_MODULES = ["{pkg}.cli", "{pkg}.experiment", "{pkg}.manager"]
IMPORT_FLOOR_LIBS = ["numpy", "pandas", "matplotlib.pyplot"]

REL_TOL = 1e-12


# --------------------------------------------------------------------------- scenarios
#
# One table drives everything.  kind:
#   "project": runs the experiment in a scratch project, per framework and per N.
#              start = "clean"    -> data/ reports/ logs/ removed before every repeat
#                      "snapshot" -> the snapshot taken after the last cold repeat is
#                                    restored before every repeat (outside the timed region)
#              mode  = "run" | "map": which CLI form (curifactory: `experiment bench ...
#                      [--map]`; curifactory_like: `experiment run|map bench ...`)
#              computes = True -> the run leaves a full cache; its `best` is checked
#   "fixed":   per framework, independent of N (interpreter start, import floor, --help)
#   "floor":   framework-free floor (shared/bench/floor.py), per N
#
# To add a scenario, add a Scenario(...) line here; nothing else needs to change.


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str
    desc: str
    start: str = ""
    mode: str = "run"
    flags: tuple = ()
    computes: bool = False
    fixed_argv: str = ""  # for kind == "fixed": which command (see Framework.fixed_argv)
    floor_mode: str = ""  # for kind == "floor"
    ours_only: bool = False  # a curifactory_like option curifactory does not have


SCENARIOS: list[Scenario] = [
    Scenario(
        "cold",
        "project",
        "clean start: everything computed + cached + report",
        start="clean",
        computes=True,
    ),
    Scenario(
        "warm",
        "project",
        "snapshot of a cold run: all cached; framework overhead + report",
        start="snapshot",
    ),
    Scenario(
        "warm_noreport",
        "project",
        "warm with --no-report (report time = warm - warm_noreport)",
        start="snapshot",
        flags=("--no-report",),
    ),
    Scenario(
        "warm_core",
        "project",
        "warm with --no-report --no-log --quiet: framework core only",
        start="snapshot",
        flags=("--no-report", "--no-log", "--quiet"),
    ),
    Scenario(
        "warm_code_ignore",
        "project",
        "warm with --code-changes ignore: no code fingerprint comparisons "
        "(fingerprint cost = warm - warm_code_ignore; curifactory_like only)",
        ours_only=True,
        start="snapshot",
        flags=("--code-changes", "ignore"),
    ),
    Scenario(
        "warm_dry",
        "project",
        "warm with --dry: no file writes (no registry/store/log/report)",
        start="snapshot",
        flags=("--dry",),
    ),
    Scenario(
        "map_warm",
        "project",
        "DAG mapping only (implies dry) on the warm snapshot",
        start="snapshot",
        mode="map",
    ),
    Scenario("map_cold", "project", "DAG mapping only, nothing cached", start="clean", mode="map"),
    Scenario(
        "parallel2_cold",
        "project",
        "clean start, --parallel 2 (2 workers fill the cache, then a final combined run)",
        start="clean",
        flags=("--parallel", "2"),
        computes=True,
    ),
    Scenario(
        "python_pass",
        "fixed",
        "`python -c pass` (interpreter start) in the framework's env",
        fixed_argv="python_pass",
    ),
    Scenario(
        "import_floor",
        "fixed",
        "import the framework's cli/experiment/manager + numpy, pandas, matplotlib.pyplot",
        fixed_argv="import_floor",
    ),
    Scenario("help", "fixed", "`experiment --help`", fixed_argv="help"),
    Scenario(
        "floor_compute",
        "floor",
        "framework-free floor.py --mode compute (same N)",
        floor_mode="compute",
    ),
    Scenario(
        "floor_compute_io",
        "floor",
        "framework-free floor.py --mode compute+io (same N)",
        floor_mode="compute+io",
    ),
]
SCENARIO_BY_NAME = {s.name: s for s in SCENARIOS}

DEFAULT_SCENARIOS = [
    "cold",
    "warm",
    "warm_noreport",
    "map_warm",
    "python_pass",
    "import_floor",
    "help",
    "floor_compute",
    "floor_compute_io",
]
DEFAULT_N = [10, 100, 1000]
QUICK_N = [10, 100]


# --------------------------------------------------------------------------- utilities


def log(msg: str) -> None:
    print(msg, flush=True)


def _git(*args: str, cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None


def repo_commit() -> dict:
    full = _git("-C", str(REPO_ROOT), "rev-parse", "HEAD")
    status = _git("-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": full or "no-commit",
        "short": full[:8] if full else "nocommit",
        "dirty": bool(status) if status is not None else None,
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_total_gb"] = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    return info


@dataclass
class Sample:
    wall_s: float
    rc: int
    maxrss_mb: float | None
    out: str
    timed_out: bool = False
    cpu_s: float | None = None
    """User + system CPU of the process and of the descendants it waited for (os.wait4)."""

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


def _ratios(pairs: list[float]) -> str:
    """``a, b, c (median m)`` for per-repeat ratios."""
    listed = ", ".join(f"{r:.2f}" for r in pairs)
    return f"{listed} (median {statistics.median(pairs):.2f})"


def run_timed(argv: list[str], cwd: Path, env: dict, out_path: Path, timeout: float) -> Sample:
    """Run argv, stdout+stderr to out_path; wall time around the whole process.

    Peak RSS comes from os.wait4 on this child (ru_maxrss of the child, or of the
    largest of its waited-for descendants), so it is per subprocess, unlike the
    monotonic RUSAGE_CHILDREN maximum.
    """
    out_path.parent.mkdir(parents=True, exist_ok=True)
    timed_out = False
    with open(out_path, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def _kill():
            nonlocal timed_out
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, _kill)
        timer.start()
        try:
            try:
                _, status, ru = os.wait4(proc.pid, 0)
            except KeyboardInterrupt:
                _kill()
                raise
            wall = time.perf_counter() - t0
        finally:
            timer.cancel()
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc  # already reaped: keep Popen from waiting again
    maxrss_mb = (
        ru.ru_maxrss / 1024.0 if sys.platform.startswith("linux") else ru.ru_maxrss / 1024.0**2
    )
    return Sample(wall, rc, maxrss_mb, str(out_path), timed_out, ru.ru_utime + ru.ru_stime)


REPORT_LINE = re.compile(r"Report written to \S+ in ([0-9.]+) s")


def self_timed_report(path: str | Path) -> float | None:
    """The report time curifactory_like logs ("Report written to ... in X s"), if any."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    found = REPORT_LINE.findall(text)
    return float(found[-1]) if found else None


def stage_calls(n: int) -> int:
    """Stage calls of the workload: 4 stages per record + the aggregate."""
    return 4 * n + 1


def tail(path: str | Path, n: int = 15) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


class Trash:
    """Where a repeat's outputs go instead of being deleted before the next repeat.

    This machine's root file system is ext4 without a journal, where allocating an inode skips,
    one by one, every inode of the block group freed in the last minute (five minutes while the
    inode table is dirty): ``recently_deleted`` in fs/ext4/ialloc.c, a check journaled ext4 does
    not make. Deleting one run's thousands of files right before the next run therefore makes
    every file the next run creates cost time proportional to the files just deleted, and
    penalises whoever creates more files. Moving the outputs aside (a rename, no inode freed)
    and deleting them once every timed run is over keeps one run's deletion out of the next
    one's timing, for every framework alike. ``--delete-between-repeats`` restores deletion.
    """

    folder: Path | None = None
    moved = 0

    @classmethod
    def discard(cls, path: Path) -> None:
        if cls.folder is not None:
            cls.folder.mkdir(parents=True, exist_ok=True)
            cls.moved += 1
            try:
                os.rename(path, cls.folder / f"{cls.moved}-{path.name}")
                return
            except OSError:
                pass  # another file system: delete it after all
        if path.is_symlink() or path.is_file():
            path.unlink()
        else:
            shutil.rmtree(path)

    @classmethod
    def empty(cls) -> None:
        if cls.folder is not None:
            shutil.rmtree(cls.folder, ignore_errors=True)


FLOOR_LAUNCHER = """
import os, runpy, shutil, sys
def _to_trash(path, *args, **kwargs):
    trash = os.environ["BENCH_TRASH"]
    os.makedirs(trash, exist_ok=True)
    os.rename(path, os.path.join(trash, f"floor-{os.getpid()}-{os.path.basename(path)}"))
shutil.rmtree = _to_trash
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
"""Runs ``floor.py`` unchanged except that the folder it deletes at its end is moved to the
trash instead (see ``Trash``), so its files, like the frameworks', are deleted after the last
timed run rather than right before the next one."""


def clean_state(project: Path) -> None:
    for d in STATE_DIRS:
        p = project / d
        if p.is_symlink() or p.exists():
            Trash.discard(p)


def take_snapshot(project: Path, snap: Path) -> None:
    if snap.exists():
        Trash.discard(snap)
    snap.mkdir(parents=True)
    for d in SNAPSHOT_DIRS:
        if (project / d).exists():
            shutil.copytree(project / d, snap / d, symlinks=True)


def restore_snapshot(project: Path, snap: Path) -> None:
    clean_state(project)
    for d in SNAPSHOT_DIRS:
        if (snap / d).exists():
            shutil.copytree(snap / d, project / d, symlinks=True)


def newest_mtime(root: Path) -> float:
    return max((p.stat().st_mtime for p in root.rglob("*") if p.is_file()), default=0.0)


def count_newer(root: Path, t: float) -> int:
    if not root.exists():
        return 0
    return sum(1 for p in root.rglob("*") if p.is_file() and p.stat().st_mtime > t)


def read_best(project: Path) -> tuple[dict | None, str | None]:
    """The aggregate's `best` JSON artifact from the cache (`*_compare_best.json`)."""
    cache = project / "data" / "cache"
    files = sorted(cache.rglob("*_compare_best.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        return None, f"no *_compare_best.json under {cache}"
    try:
        return json.loads(files[-1].read_text()), None
    except (OSError, ValueError) as e:
        return None, f"unreadable {files[-1]}: {e}"


def report_size(project: Path) -> dict | None:
    """Size of the newest run report (its index.html and its whole folder), in bytes."""
    reports = project / "reports"
    pages = [p for p in reports.glob("*/index.html") if p.parent.name != "_latest"]
    if not pages:
        return None
    page = max(pages, key=lambda p: p.stat().st_mtime)
    folder = sum(f.stat().st_size for f in page.parent.rglob("*") if f.is_file())
    return {"index_html": page.stat().st_size, "folder": folder}


def best_equal(a: dict, b: dict) -> tuple[bool, str]:
    if a.get("best_name") != b.get("best_name"):
        return False, f"best_name {a.get('best_name')!r} != {b.get('best_name')!r}"
    for k in sorted(set(a) | set(b)):
        if k == "best_name":
            continue
        va, vb = a.get(k), b.get(k)
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            if not math.isclose(va, vb, rel_tol=REL_TOL, abs_tol=1e-300):
                return False, f"{k}: {va!r} != {vb!r}"
        elif va != vb:
            return False, f"{k}: {va!r} != {vb!r}"
    return True, ""


def parse_json_blob(text: str) -> dict | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        return json.loads(text[start : end + 1])
    except ValueError:
        return None


# --------------------------------------------------------------------------- frameworks


@dataclass
class Framework:
    name: str
    python: str = ""
    experiment: list[str] = field(default_factory=list)  # argv prefix that acts as `experiment`
    env: dict = field(default_factory=dict)
    project_src: Path | None = None
    info: dict = field(default_factory=dict)
    error: str | None = None

    def project_argv(self, sc: Scenario) -> list[str]:
        if self.name == CF:
            flags = list(sc.flags) + (["--map"] if sc.mode == "map" else [])
            return self.experiment + EXP_ARGS + flags
        return self.experiment + [sc.mode] + EXP_ARGS + list(sc.flags)

    def fixed_argv(self, sc: Scenario) -> list[str]:
        if sc.fixed_argv == "python_pass":
            return [self.python, "-c", "pass"]
        if sc.fixed_argv == "import_floor":
            return [self.python, "-c", import_floor_code(self.name)]
        if sc.fixed_argv == "help":
            return self.experiment + ["--help"]
        raise ValueError(sc.fixed_argv)


def import_floor_code(pkg: str) -> str:
    mods = [m.format(pkg=pkg) for m in IMPORT_FLOOR_MODULES]
    return (
        "import importlib, importlib.util\n"
        f"import {pkg}\n"
        f"for m in {mods!r}:\n"
        "    if importlib.util.find_spec(m) is not None:\n"
        "        importlib.import_module(m)\n"
        f"import {', '.join(IMPORT_FLOOR_LIBS)}\n"
    )


def _clean_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "BENCH_N", "PYTHONSTARTUP"):
        env.pop(k, None)
    env["MPLBACKEND"] = "Agg"
    if extra:
        env.update(extra)
    return env


def _probe(argv: list[str], env: dict, cwd: str) -> tuple[bool, str]:
    try:
        r = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


VERSIONS_CODE = (
    "import json, importlib.metadata as m\n"
    "out = {}\n"
    "for d in ['curifactory', 'curifactory_like', 'numpy', 'pandas', 'matplotlib']:\n"
    "    try: out[d] = m.version(d)\n"
    "    except Exception: out[d] = None\n"
    "print(json.dumps(out))\n"
)


def lib_versions(python: str, env: dict) -> dict:
    ok, out = _probe([python, "-c", VERSIONS_CODE], env, tempfile.gettempdir())
    return (parse_json_blob(out) or {}) if ok else {}


def setup_curifactory(venv: Path, ref_project: Path | None, no_install: bool) -> Framework:
    fw = Framework(CF)
    py, exe = venv / "bin" / "python", venv / "bin" / "experiment"
    env = _clean_env(
        {
            "VIRTUAL_ENV": str(venv),
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    check = [
        str(py),
        "-c",
        f"import importlib.metadata as m, curifactory; assert m.version('curifactory') == '{CF_VERSION}'",
    ]
    ok = py.exists() and exe.exists() and _probe(check, env, tempfile.gettempdir())[0]
    if not ok:
        if no_install:
            fw.error = f"curifactory {CF_VERSION} not found in {venv} (and --no-install given)"
            return fw
        log(f"installing curifactory=={CF_VERSION} into {venv} ...")
        try:
            if not py.exists():
                venv.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            # same numpy/pandas/matplotlib versions as the curifactory_like environment when possible
            here = lib_versions(sys.executable, _clean_env())
            pinned = [
                f"{d}=={here[d]}" if here.get(d) else d for d in ("numpy", "pandas", "matplotlib")
            ]
            base = [str(py), "-m", "pip", "install", "-q", f"curifactory=={CF_VERSION}"]
            r = subprocess.run(base + pinned)
            if r.returncode != 0:
                log("pinned install failed, retrying with unpinned numpy/pandas/matplotlib")
                subprocess.run(base + ["numpy", "pandas", "matplotlib"], check=True)
        except (subprocess.CalledProcessError, OSError) as e:
            fw.error = f"could not install curifactory into {venv}: {e}"
            return fw
        ok, out = _probe(check, env, tempfile.gettempdir())
        if not ok:
            fw.error = f"curifactory {CF_VERSION} install check failed: {out[-500:]}"
            return fw
    fw.python, fw.experiment, fw.env = str(py), [str(exe)], env
    fw.info = {"venv": str(venv), "versions": lib_versions(str(py), env)}
    if ref_project is not None and ref_project.is_dir():
        fw.project_src = ref_project
        fw.info["project_src"] = str(ref_project)
    else:
        fw.project_src = None  # derived from the curifactory_like workload (imports swapped back)
        fw.info["project_src"] = f"{WORKLOAD_DIR} with curifactory_like -> curifactory"
    return fw


OURS_LAUNCHER = (
    "import sys; from curifactory_like.cli import console_main; "
    "sys.argv[0] = 'experiment'; console_main()"
)


def _inside_repo(module_file: str) -> bool:
    try:
        return Path(module_file).resolve().is_relative_to(REPO_ROOT.resolve())
    except (OSError, ValueError):
        return False


def setup_ours(cmd_override: str | None) -> Framework:
    fw = Framework(OURS, python=sys.executable, project_src=WORKLOAD_DIR)
    neutral = tempfile.gettempdir()
    env = _clean_env()
    probe = [sys.executable, "-c", "import curifactory_like, sys; print(curifactory_like.__file__)"]
    ok, out = _probe(probe, env, neutral)
    via_pythonpath = False
    if not ok or not _inside_repo(out.splitlines()[-1] if out else ""):
        # not installed, or installed from another checkout (e.g. an editable install of the
        # main worktree): measure this repository's package. Launched with `python -c`, the
        # project directory (cwd) stays first on sys.path, ahead of this repo's own
        # experiments/ and params/ packages.
        env2 = _clean_env({"PYTHONPATH": str(REPO_ROOT)})
        ok2, out2 = _probe(probe, env2, neutral)
        if ok2:
            env, ok, out, via_pythonpath = env2, ok2, out2, True
    if not ok:
        fw.error = "`import curifactory_like` fails: " + (out.splitlines()[-1] if out else "?")
        return fw
    fw.env = env
    # `pip install` byte-compiles a package (curifactory's venv has its .pyc files); a checkout
    # run with PYTHONDONTWRITEBYTECODE set would recompile ours on every run. Compile it once.
    package_dir = Path(out.splitlines()[-1]).parent
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(package_dir)],
        env=env, cwd=neutral, capture_output=True, timeout=300,
    )
    fw.info = {
        "module_file": out.splitlines()[-1],
        "via_pythonpath": via_pythonpath,
        "versions": lib_versions(sys.executable, env),
    }
    if cmd_override:
        fw.experiment = cmd_override.split()
    else:
        script = Path(sys.executable).parent / "experiment"
        uses_ours = False
        if script.exists() and not via_pythonpath:
            with contextlib.suppress(OSError):
                uses_ours = "curifactory_like" in script.read_text(errors="replace")[:2000]
        fw.experiment = [str(script)] if uses_ours else [sys.executable, "-c", OURS_LAUNCHER]
    fw.info["experiment_cmd"] = fw.experiment
    ok, out = _probe(fw.experiment + ["--help"], env, neutral)
    if not ok:
        fw.error = "`experiment --help` fails: " + "\n".join(out.splitlines()[-3:])
    return fw


def build_project(fw: Framework, dest: Path) -> None:
    """Copy the framework's version of the project to dest, git init + commit it."""
    if dest.exists():
        shutil.rmtree(dest)
    if fw.project_src is not None:
        shutil.copytree(
            fw.project_src, dest, ignore=shutil.ignore_patterns(*STATE_DIRS, "__pycache__", "*.pyc")
        )
    else:  # curifactory version derived from our workload
        shutil.copytree(
            WORKLOAD_DIR, dest, ignore=shutil.ignore_patterns(*STATE_DIRS, "__pycache__", "*.pyc")
        )
        bench = dest / "experiments" / "bench.py"
        bench.write_text(bench.read_text().replace("curifactory_like", "curifactory"))
    git = [
        "git",
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@localhost",
        "-c",
        "init.defaultBranch=main",
        "-c",
        "commit.gpgsign=false",
    ]
    subprocess.run(git + ["init", "-q"], cwd=dest, check=True)
    subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "bench project"], cwd=dest, check=True)


# --------------------------------------------------------------------------- results


class Results:
    """Raw samples + checks; renders markdown/JSON."""

    def __init__(self, meta: dict):
        self.meta = meta
        # rows[(scenario, N or None, framework)] = {"samples": [...], "error": str|None}
        self.rows: dict[tuple, dict] = {}
        self.bests: dict[int, dict[str, dict]] = {}  # N -> source -> best
        self.check: dict[int, dict] = {}  # N -> {"status": "ok"|"MISMATCH"|"n/a", "detail": str}
        self.prep: list[dict] = []
        self.report_sizes: dict[tuple[int, str], dict] = {}  # (N, framework) -> sizes in bytes

    def row(self, scenario: str, n: int | None, fw: str) -> dict:
        return self.rows.setdefault((scenario, n, fw), {"samples": [], "error": None})

    def add(
        self, scenario: str, n: int | None, fw: str, s: Sample, extra: dict | None = None
    ) -> None:
        d = {
            "wall_s": s.wall_s,
            "rc": s.rc,
            "maxrss_mb": s.maxrss_mb,
            "cpu_s": s.cpu_s,
            "out": s.out,
            "timed_out": s.timed_out,
        }
        if extra:
            d.update(extra)
        report_s = self_timed_report(s.out)
        if report_s is not None:
            d["report_s"] = report_s
        r = self.row(scenario, n, fw)
        r["samples"].append(d)
        if not s.ok and r["error"] is None:
            r["error"] = (
                f"rc={s.rc}{' (timeout)' if s.timed_out else ''}; see {s.out}:\n{tail(s.out)}"
            )

    def fail(self, scenario: str, n: int | None, fw: str, msg: str) -> None:
        r = self.row(scenario, n, fw)
        if r["error"] is None:
            r["error"] = msg

    def add_best(self, n: int, source: str, best: dict) -> None:
        self.bests.setdefault(n, {})[source] = best
        self.recheck(n)

    def recheck(self, n: int) -> None:
        bests = self.bests.get(n, {})
        srcs = sorted(bests)
        if len(srcs) < 2:
            self.check[n] = {"status": "n/a", "detail": f"only {srcs or 'no'} result(s) to compare"}
            return
        ref = srcs[0]
        for s in srcs[1:]:
            eq, why = best_equal(bests[ref], bests[s])
            if not eq:
                self.check[n] = {"status": "MISMATCH", "detail": f"{ref} vs {s}: {why}"}
                return
        self.check[n] = {"status": "ok", "detail": "equal: " + ", ".join(srcs)}

    # ---- statistics
    def paired_ratios(
        self, numerator: tuple[str, int | None, str], denominator: tuple[str, int | None, str]
    ) -> list[float]:
        """Wall-time ratios of the k-th samples of two rows measured in lockstep (repeat k of
        each, one right after the other), for the pairs where both runs succeeded. On a shared
        machine whose speed drifts between repeats, the median of these pairs is steadier than
        the ratio of the two medians."""
        rows = self.rows.get(numerator), self.rows.get(denominator)
        if rows[0] is None or rows[1] is None:
            return []
        fine = lambda x: x["rc"] == 0 and not x["timed_out"] and x["wall_s"] > 0  # noqa: E731
        return [
            a["wall_s"] / b["wall_s"]
            for a, b in zip(rows[0]["samples"], rows[1]["samples"], strict=False)
            if fine(a) and fine(b)
        ]

    def stat(self, scenario: str, n: int | None, fw: str) -> dict | None:
        r = self.rows.get((scenario, n, fw))
        if r is None:
            return None
        ok = [s for s in r["samples"] if s["rc"] == 0 and not s["timed_out"]]
        if r["error"] or not ok:
            return {"error": r["error"] or "no successful sample"}
        rss = [s["maxrss_mb"] for s in ok if s["maxrss_mb"] is not None]
        out = {
            "median_s": statistics.median(s["wall_s"] for s in ok),
            "n": len(ok),
            "min_s": min(s["wall_s"] for s in ok),
            "max_s": max(s["wall_s"] for s in ok),
            "maxrss_mb": max(rss) if rss else None,
        }
        reports = [s["report_s"] for s in ok if s.get("report_s") is not None]
        if reports:
            out["report_median_s"] = statistics.median(reports)
        inner = [s["workload_s"] for s in ok if s.get("workload_s") is not None]
        if inner:
            out["workload_median_s"] = statistics.median(inner)
        cpu = [s["cpu_s"] for s in ok if s.get("cpu_s") is not None]
        if cpu:
            out["cpu_median_s"] = statistics.median(cpu)
        return out

    def to_json(self) -> dict:
        rows = []
        for (sc, n, fw), r in self.rows.items():
            rows.append(
                {"scenario": sc, "N": n, "framework": fw, **r, "stat": self.stat(sc, n, fw)}
            )
        return {
            "meta": self.meta,
            "rows": rows,
            "bests": {str(k): v for k, v in self.bests.items()},
            "check": {str(k): v for k, v in self.check.items()},
            "prep_runs": self.prep,
            "report_sizes": {f"{n} {fw}": v for (n, fw), v in self.report_sizes.items()},
        }

    def _cpu_lines(
        self, frameworks: list[str], ns: list[int], scenarios: list[str], floor: list[str]
    ) -> list[str]:
        """Median CPU time (user + sys, the process and the children it waited for) beside
        the wall time: steadier than wall time on a shared machine."""
        rows = []
        keyed = [(sc, n) for n in ns for sc in scenarios if SCENARIO_BY_NAME[sc].kind == "project"]
        keyed += [(sc, None) for sc in scenarios if SCENARIO_BY_NAME[sc].kind == "fixed"]
        for sc, n in keyed:
            for fw in frameworks:
                rows.append((sc, n, fw))
        rows += [(sc, n, "floor") for n in ns for sc in floor]
        lines = []
        for sc, n, fw in rows:
            st = self.stat(sc, n, fw)
            if not st or "error" in st or st.get("cpu_median_s") is None:
                continue
            share = st["cpu_median_s"] / st["median_s"] if st["median_s"] > 0 else 0.0
            lines.append(
                f"| {sc} | {n if n is not None else '–'} | {fw} | {fmt_s(st['cpu_median_s'])} "
                f"| {fmt_s(st['median_s'])} | {share:.2f} |"
            )
        if not lines:
            return []
        return [
            "## CPU time (user + sys, median of the repeats)",
            "",
            "| scenario | N | framework | CPU s | wall s | CPU / wall |",
            "|---|---:|---|---:|---:|---:|",
            *lines,
            "",
        ]

    def _scaling_lines(self, frameworks: list[str], ns: list[int], proj: list[str]) -> list[str]:
        """N-to-N ratios of each scenario (linear growth from 100 to 1000 gives <= ~10)."""
        lines = []
        ordered = sorted(ns)
        for small, large in zip(ordered[:-1], ordered[1:], strict=True):
            for fw in frameworks:
                cells = []
                for sc in proj:
                    a, b = self.stat(sc, small, fw), self.stat(sc, large, fw)
                    if a and b and "error" not in a and "error" not in b and a["median_s"] > 0:
                        cells.append(f"{sc} {b['median_s'] / a['median_s']:.1f}")
                if cells:
                    lines.append(f"- {fw}, N={large}/N={small}: " + ", ".join(cells))
        return lines

    def to_markdown(self, frameworks: list[str], ns: list[int], scenarios: list[str]) -> str:
        m = self.meta
        L = ["# Benchmark: curifactory_like vs curifactory " + CF_VERSION, ""]
        dirty = " (working tree dirty)" if m["repo"].get("dirty") else ""
        L.append(f"- date: {m['started']} (finished {m.get('finished', 'unfinished')})")
        L.append(f"- curifactory_like commit: `{m['repo']['commit']}`{dirty}")
        mi = m["machine"]
        L.append(
            f"- machine: {mi.get('cpu', '?')}, {mi.get('cpu_count')} cores, "
            f"{mi.get('mem_total_gb', '?')} GB RAM, {mi.get('platform')}, Python {mi.get('python')}"
        )
        for fw in frameworks:
            fi = m["frameworks"].get(fw, {})
            v = fi.get("versions", {})
            libs = ", ".join(f"{k} {v[k]}" for k in ("numpy", "pandas", "matplotlib") if v.get(k))
            err = " — **unavailable** (see Errors)" if fi.get("error") else ""
            L.append(f"- {fw}: {libs or 'versions unknown'}{err}")
        L.append(
            f"- load average (1/5/15 min) at start: {m.get('loadavg_start')}, at end: "
            f"{m.get('loadavg_end', '?')} (other work on the machine inflates the times)"
        )
        L.append(
            f"- repeats: {m['repeats']}; whole-process wall time (perf_counter around the subprocess), "
            "median of the repeats; peak RSS = max over repeats of the process's ru_maxrss (os.wait4); "
            "CPU = user + sys of the process and the children it waited for (os.wait4)"
        )
        L.append(
            "- between repeats, a run's outputs are "
            + (
                "deleted right before the next repeat"
                if m.get("delete_between_repeats")
                else "moved aside and deleted after the last timed run (see `Trash` in "
                "run_bench.py: on ext4 without a journal, deleting thousands of files slows the "
                "next run's file creations); so is the folder floor.py writes"
            )
        )
        L.append(f"- command: `{m['command']}`")
        L.append("")
        both = CF in frameworks and OURS in frameworks
        proj = [s for s in scenarios if SCENARIO_BY_NAME[s].kind == "project"]
        fixed = [s for s in scenarios if SCENARIO_BY_NAME[s].kind == "fixed"]
        floor = [s for s in scenarios if SCENARIO_BY_NAME[s].kind == "floor"]

        def cell(st):
            if st is None:
                return "–"
            if "error" in st:
                return "ERROR"
            return fmt_s(st["median_s"])

        def rss(st):
            if not st or "error" in st or st.get("maxrss_mb") is None:
                return "–"
            return f"{st['maxrss_mb']:,.0f}"

        def ratio(a, b):
            if not a or not b or "error" in a or "error" in b:
                return "–"
            return f"{a['median_s'] / b['median_s']:.2f}"

        if proj or fixed:
            L += [
                "## Framework runs",
                "",
                "ratio = curifactory median / curifactory_like median (> 1: curifactory_like is faster).",
                "",
                "| scenario | N | curifactory median s | curifactory_like median s | ratio cf/ours "
                "| curifactory peak RSS MB | curifactory_like peak RSS MB | best check |",
                "|---|---:|---:|---:|---:|---:|---:|---|",
            ]
            for n in ns:
                chk = self.check.get(n, {"status": "n/a"})["status"]
                for sc in proj:
                    a, b = self.stat(sc, n, CF), self.stat(sc, n, OURS)
                    if a is None and b is None:
                        continue
                    if chk == "MISMATCH":
                        L.append(f"| {sc} | {n} | MISMATCH | MISMATCH | – | – | – | MISMATCH |")
                        continue
                    L.append(
                        f"| {sc} | {n} | {cell(a)} | {cell(b)} | {ratio(a, b) if both else '–'} "
                        f"| {rss(a)} | {rss(b)} | {chk} |"
                    )
            for sc in fixed:
                a, b = self.stat(sc, None, CF), self.stat(sc, None, OURS)
                L.append(
                    f"| {sc} | – | {cell(a)} | {cell(b)} | {ratio(a, b) if both else '–'} "
                    f"| {rss(a)} | {rss(b)} | |"
                )
            L.append("")
        if floor:
            L += [
                "## Framework-free floor (shared/bench/floor.py, run with this script's interpreter)",
                "",
                "| scenario | N | process median s | workload median s (inside the process) | peak RSS MB |",
                "|---|---:|---:|---:|---:|",
            ]
            for n in ns:
                for sc in floor:
                    st = self.stat(sc, n, "floor")
                    if st is None:
                        continue
                    w = fmt_s(st["workload_median_s"]) if st and "workload_median_s" in st else "–"
                    L.append(f"| {sc} | {n} | {cell(st)} | {w} | {rss(st)} |")
            L.append("")
        L += self._cpu_lines(frameworks, ns, proj + fixed, floor)
        # derived figures
        derived = []
        for n in ns:
            if self.check.get(n, {}).get("status") == "MISMATCH":
                continue
            fl = self.stat("floor_compute_io", n, "floor")
            for fw in frameworks:
                cold, warm, nor = (self.stat(s, n, fw) for s in ("cold", "warm", "warm_noreport"))
                good = lambda st: st is not None and "error" not in st  # noqa: E731
                parts = []
                if good(cold) and good(fl):
                    parts.append(
                        f"cold − floor(compute+io) = {fmt_s(cold['median_s'] - fl['median_s'])} s"
                    )
                if good(warm) and good(nor):
                    parts.append(
                        f"report = warm − warm_noreport = {fmt_s(warm['median_s'] - nor['median_s'])} s"
                    )
                if good(warm) and warm.get("report_median_s") is not None:
                    parts.append(f"report (self-timed, in the log) = {fmt_s(warm['report_median_s'])} s")
                imp = self.stat("import_floor", None, fw)
                if good(warm) and good(imp):
                    per_call = (warm["median_s"] - imp["median_s"]) / stage_calls(n)
                    parts.append(
                        f"overhead per cached stage call = (warm − import_floor) / {stage_calls(n)} "
                        f"calls = {per_call * 1000:.2f} ms"
                    )
                if good(cold) and good(fl) and fl["median_s"] > 0:
                    parts.append(
                        f"cold / floor(compute+io) = {cold['median_s'] / fl['median_s']:.2f} "
                        f"(overhead {100 * (cold['median_s'] / fl['median_s'] - 1):.0f}% of the floor)"
                    )
                if good(cold) and good(fl) and cold.get("cpu_median_s") and fl.get("cpu_median_s"):
                    parts.append(
                        "in CPU time (user + sys), cold / floor(compute+io) = "
                        f"{cold['cpu_median_s'] / fl['cpu_median_s']:.2f}"
                    )
                pairs = self.paired_ratios(("cold", n, fw), ("floor_compute_io", n, "floor"))
                if pairs:
                    parts.append(f"cold / floor per repeat (run back to back) = {_ratios(pairs)}")
                size = self.report_sizes.get((n, fw))
                if size:
                    parts.append(
                        f"report index.html = {size['index_html'] / 1e6:.3f} MB, report folder = "
                        f"{size['folder'] / 1e6:.2f} MB"
                    )
                if parts:
                    derived.append(f"- N={n}, {fw}: " + "; ".join(parts))
        for n in ns:
            for sc in proj:
                pairs = self.paired_ratios((sc, n, CF), (sc, n, OURS))
                if pairs:
                    derived.append(
                        f"- N={n}, {sc}: curifactory / curifactory_like per repeat (run back to "
                        f"back) = {_ratios(pairs)}"
                    )
        if derived:
            L += ["## Derived", ""] + derived + [""]
        scaling = self._scaling_lines(frameworks, ns, proj)
        if scaling:
            L += ["## Scaling (median at the larger N / median at the smaller N)", ""] + scaling + [""]
        # warm runs that wrote cache files (i.e. were not fully warm)
        notes = []
        for (sc, n, fw), r in self.rows.items():
            written = [x.get("cache_files_written") or 0 for x in r["samples"]]
            if any(written):
                notes.append(
                    f"- {fw} {sc} N={n}: wrote {max(written)} file(s) under data/cache in a run "
                    "that started from the warm snapshot (not fully warm?)"
                )
        if notes:
            L += ["## Warnings", ""] + notes + [""]
        # checks and errors
        L += ["## Correctness check (`best` of the aggregate, rel. tol 1e-12)", ""]
        for n in ns:
            c = self.check.get(n) or {"status": "n/a", "detail": "no `best` result was produced"}
            if c:
                L.append(f"- N={n}: **{c['status']}** — {c['detail']}")
                b = next(iter(self.bests.get(n, {}).values()), None)
                if b and c["status"] == "ok":
                    L.append(f"  - best: `{json.dumps(b)}`")
        L.append("")
        fw_errs = {fw: m["frameworks"].get(fw, {}).get("error") for fw in frameworks}
        errs = [
            (k, r["error"])
            for k, r in self.rows.items()
            if r["error"] and r["error"] != fw_errs.get(k[2])
        ]
        if errs or any(fw_errs.values()):
            L += ["## Errors", ""]
            for fw, e in fw_errs.items():
                if e:
                    L += [f"- {fw} unavailable (all its runs skipped):", "", "  ```"]
                    L += ["  " + line for line in e.splitlines()[-12:]] + ["  ```"]
            seen = set()
            for (sc, n, fw), e in errs:
                first = e.splitlines()[0] if e else ""
                key = (fw, first)
                nn = "–" if n is None else n
                if key in seen:
                    L.append(f"- {fw} {sc} N={nn}: (same as above)")
                    continue
                seen.add(key)
                L.append(f"- {fw} {sc} N={nn}:")
                L.append("")
                L.append("  ```")
                L += ["  " + line for line in e.splitlines()[-12:]]
                L.append("  ```")
            L.append("")
        return "\n".join(L)


def fmt_s(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


# --------------------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--n", nargs="+", type=int, default=None, help="values of N (default 10 100 1000)"
    )
    ap.add_argument(
        "--scenarios",
        nargs="+",
        default=None,
        help=f"scenarios (default: {' '.join(DEFAULT_SCENARIOS)}); 'all' for every one",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frameworks", nargs="+", default=list(ALL_FRAMEWORKS), choices=ALL_FRAMEWORKS)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--quick", action="store_true", help="N = 10 100, repeats 3, both frameworks")
    ap.add_argument("--list-scenarios", action="store_true")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=os.environ.get("BENCH_WORKDIR"),
        help="scratch directory (default $BENCH_WORKDIR or a new temp dir); must be outside the repo",
    )
    ap.add_argument(
        "--keep-workdir", action="store_true", help="do not delete the scratch projects/outputs"
    )
    ap.add_argument(
        "--cf-venv",
        type=Path,
        default=Path(
            os.environ.get(
                "BENCH_CF_VENV",
                Path.home() / ".cache" / "curifactory_like-bench" / "venv-curifactory",
            )
        ),
    )
    ap.add_argument("--no-install", action="store_true", help="never pip-install curifactory")
    ap.add_argument("--reference-project", type=Path, default=DEFAULT_SHARED / "reference_project")
    ap.add_argument("--floor", type=Path, default=DEFAULT_SHARED / "floor.py")
    ap.add_argument(
        "--ours-cmd",
        default=None,
        help="command used as `experiment` for curifactory_like (default: the console script "
        "next to this interpreter, else python -c launcher)",
    )
    ap.add_argument("--timeout", type=float, default=3600.0, help="per-run timeout in seconds")
    ap.add_argument(
        "--delete-between-repeats",
        action="store_true",
        help="delete a repeat's outputs right before the next repeat instead of moving them "
        "aside until the end (see Trash: deleting thousands of files makes the next run's "
        "file creations slower on ext4 without a journal)",
    )
    ap.add_argument(
        "--keep-trash",
        action="store_true",
        help="leave the moved-aside outputs in <workdir>/trash (delete them yourself later); "
        "lets a second invocation start without following this one's deletion",
    )
    args = ap.parse_args(argv)

    if args.list_scenarios:
        for s in SCENARIOS:
            flags = " ".join(s.flags) + (
                " [map]" if s.mode == "map" and s.kind == "project" else ""
            )
            log(f"{s.name:17s} {s.kind:8s} {s.start:9s} {flags:30s} {s.desc}")
        return 0
    ns = args.n or (QUICK_N if args.quick else DEFAULT_N)
    scen = args.scenarios or list(DEFAULT_SCENARIOS)
    if scen == ["all"]:
        scen = [s.name for s in SCENARIOS]
    bad = [s for s in scen if s not in SCENARIO_BY_NAME]
    if bad:
        ap.error(f"unknown scenario(s) {bad}; known: {', '.join(SCENARIO_BY_NAME)}")
    scen = [s.name for s in SCENARIOS if s.name in scen]  # canonical order (cold first)
    frameworks = [f for f in ALL_FRAMEWORKS if f in args.frameworks]
    frameworks.sort(
        key=lambda f: 0 if f == CF else 1
    )  # table order doesn't matter; cf first = reference

    if args.workdir:
        work = Path(args.workdir).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="curifactory_like-bench-"))
    if work == REPO_ROOT or REPO_ROOT in work.parents:
        ap.error(f"--workdir {work} is inside the repository; use a directory outside it")
    if not args.delete_between_repeats:
        Trash.folder = work / "trash"

    started = _dt.datetime.now()
    repo = repo_commit()
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "repo": repo,
        "machine": machine_info(),
        "repeats": args.repeats,
        "N": ns,
        "scenarios": scen,
        "workdir": str(work),
        "command": " ".join(
            ["python", "benchmarks/run_bench.py"] + (argv if argv is not None else sys.argv[1:])
        ),
        "frameworks": {},
        "delete_between_repeats": bool(args.delete_between_repeats),
    }
    meta["loadavg_start"] = _loadavg()
    res = Results(meta)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"results-{started.strftime('%Y%m%d-%H%M%S')}-{repo['short']}"

    def write_results(final: bool = False) -> None:
        if final:
            meta["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
            meta["loadavg_end"] = _loadavg()
        md = res.to_markdown(frameworks, ns, scen)
        (args.out / f"{stem}.md").write_text(md + "\n")
        (args.out / f"{stem}.json").write_text(
            json.dumps(res.to_json(), indent=1, default=str) + "\n"
        )
        shutil.copyfile(args.out / f"{stem}.md", args.out / "latest.md")
        shutil.copyfile(args.out / f"{stem}.json", args.out / "latest.json")

    log(f"workdir: {work}")
    log(f"N={ns} scenarios={scen} repeats={args.repeats} frameworks={frameworks}")

    # ---- frameworks
    fws: dict[str, Framework] = {}
    for name in frameworks:
        fw = (
            setup_curifactory(args.cf_venv, args.reference_project, args.no_install)
            if name == CF
            else setup_ours(args.ours_cmd)
        )
        fws[name] = fw
        meta["frameworks"][name] = {**fw.info, "error": fw.error}
        if fw.error:
            log(f"!! {name} unavailable: {fw.error}")
        else:
            # warm-up (font cache, page cache, pyc), untimed
            _probe(fw.fixed_argv(SCENARIO_BY_NAME["import_floor"]), fw.env, str(work))
            log(f"{name}: {' '.join(fw.experiment)}")

    floor_ok = args.floor.is_file()
    if any(SCENARIO_BY_NAME[s].kind == "floor" for s in scen) and not floor_ok:
        log(f"!! floor.py not found at {args.floor}; floor scenarios skipped")
    outdir = work / "out"
    interrupted = False

    def do_run(sc_name, n, fwname, argv_, cwd, env, rep, label=None):
        out = outdir / f"{fwname}-N{n if n is not None else 'x'}-{label or sc_name}-r{rep}.out"
        s = run_timed(argv_, cwd, env, out, args.timeout)
        rss = f"{s.maxrss_mb:,.0f} MB" if s.maxrss_mb is not None else "?"
        status = "" if s.ok else f"  FAILED rc={s.rc}{' timeout' if s.timed_out else ''} ({out})"
        log(
            f"  [{label or sc_name:15s} N={n if n is not None else '-':>5}] {fwname:17s} rep {rep}: "
            f"{s.wall_s:8.2f} s  {rss}{status}"
        )
        return s

    try:
        # ---- fixed (N-independent) scenarios
        for sc_name in (s for s in scen if SCENARIO_BY_NAME[s].kind == "fixed"):
            sc = SCENARIO_BY_NAME[sc_name]
            for rep in range(1, args.repeats + 1):
                for name, fw in fws.items():
                    # interpreter start / import floor need only an importable package
                    runnable = not fw.error or (
                        fw.env and sc.fixed_argv in ("python_pass", "import_floor")
                    )
                    if not runnable:
                        res.fail(sc_name, None, name, fw.error)
                        continue
                    res.add(
                        sc_name,
                        None,
                        name,
                        do_run(sc_name, None, name, fw.fixed_argv(sc), work, fw.env, rep),
                    )
        write_results()

        for n in ns:
            log(f"== N = {n}")
            # ---- floor: interleaved with the cold repeats when both are measured (one floor
            # repeat just before each repeat of the frameworks' cold runs), so the cold/floor
            # ratio compares runs taken under the same load; otherwise all repeats up front
            floor_scen = [s for s in scen if SCENARIO_BY_NAME[s].kind == "floor"]
            interleave = "cold" in scen and bool(floor_scen) and floor_ok

            def run_floor(sc_name: str, rep: int, n: int = n) -> None:
                sc = SCENARIO_BY_NAME[sc_name]
                # the floor writes its files (tempfile.mkdtemp) in the work folder, beside the
                # projects: file creation cost on this kind of machine depends on where in the
                # file system a folder lives (measured 0.1 to 1.5 ms per new file at one time
                # between two folders of /tmp), so both sides should pay the same
                env = _clean_env({"BENCH_N": str(n), "TMPDIR": str(work)})
                floor_cmd = [str(args.floor), "--mode", sc.floor_mode, "--json"]
                if Trash.folder is not None:  # its files go to the trash, like the projects'
                    env["BENCH_TRASH"] = str(Trash.folder)
                    floor_cmd = ["-c", FLOOR_LAUNCHER, *floor_cmd]
                s = do_run(
                    sc_name,
                    n,
                    "floor",
                    [sys.executable, *floor_cmd],
                    work,
                    env,
                    rep,
                )
                blob = parse_json_blob(Path(s.out).read_text(errors="replace")) if s.ok else None
                res.add(
                    sc_name, n, "floor", s, {"workload_s": blob.get("workload_s") if blob else None}
                )
                if blob and "best" in blob and rep == 1:
                    res.add_best(n, f"floor.py --mode {sc.floor_mode}", blob["best"])

            for sc_name in floor_scen:
                if not floor_ok:
                    res.fail(sc_name, n, "floor", f"floor.py not found at {args.floor}")
                elif not interleave:
                    for rep in range(1, args.repeats + 1):
                        run_floor(sc_name, rep)

            # ---- project scenarios
            proj = [s for s in scen if SCENARIO_BY_NAME[s].kind == "project"]
            if not proj:
                write_results()
                continue
            projects, snaps, have_snap = {}, {}, {}
            for name, fw in fws.items():
                if fw.error:
                    continue
                projects[name] = work / name / "cfproj"
                snaps[name] = work / name / "snapshot"
                have_snap[name] = False
                try:
                    build_project(fw, projects[name])
                except (subprocess.CalledProcessError, OSError) as e:
                    fw_err = f"could not build the scratch project: {e}"
                    for sc_name in proj:
                        res.fail(sc_name, n, name, fw_err)
                    projects.pop(name)

            need_snapshot = any(SCENARIO_BY_NAME[s].start == "snapshot" for s in proj)
            if need_snapshot and "cold" not in proj:
                # untimed preparatory cold run to produce the warm snapshot (and the best check)
                for name, fw in fws.items():
                    if name not in projects:
                        continue
                    clean_state(projects[name])
                    s = do_run(
                        "cold",
                        n,
                        name,
                        fw.project_argv(SCENARIO_BY_NAME["cold"]),
                        projects[name],
                        {**fw.env, "BENCH_N": str(n)},
                        1,
                        label="prep_cold",
                    )
                    res.prep.append(
                        {"N": n, "framework": name, "wall_s": s.wall_s, "rc": s.rc, "out": s.out}
                    )
                    if s.ok:
                        take_snapshot(projects[name], snaps[name])
                        have_snap[name] = True
                        best, why = read_best(projects[name])
                        if best is not None:
                            res.add_best(n, name, best)
                        else:
                            log(f"  !! {name}: {why}")

            for sc_name in proj:
                sc = SCENARIO_BY_NAME[sc_name]
                for rep in range(1, args.repeats + 1):
                    if interleave and sc_name == "cold":
                        for floor_name in floor_scen:
                            run_floor(floor_name, rep)
                    for name, fw in fws.items():
                        if fw.error:
                            res.fail(sc_name, n, name, fw.error)
                            continue
                        if name not in projects or (sc.ours_only and name != "curifactory_like"):
                            continue
                        project = projects[name]
                        if sc.start == "snapshot":
                            if not have_snap[name]:
                                res.fail(sc_name, n, name, "no warm snapshot (the cold run failed)")
                                continue
                            restore_snapshot(project, snaps[name])
                            t_restore = newest_mtime(project / "data" / "cache")
                        else:
                            clean_state(project)
                        s = do_run(
                            sc_name,
                            n,
                            name,
                            fw.project_argv(sc),
                            project,
                            {**fw.env, "BENCH_N": str(n)},
                            rep,
                        )
                        extra = None
                        if sc.start == "snapshot":
                            # a warm run should not (re)write cache artifacts: count files newer
                            # than the restored snapshot (copytree keeps the original mtimes)
                            extra = {
                                "cache_files_written": count_newer(
                                    project / "data" / "cache", t_restore
                                )
                            }
                        res.add(sc_name, n, name, s, extra)
                        if sc.computes and s.ok and rep == args.repeats:
                            best, why = read_best(project)
                            if best is None:
                                res.fail(sc_name, n, name, f"run succeeded but {why}")
                            else:
                                src = name if sc_name == "cold" else f"{name} {sc_name}"
                                res.add_best(n, src, best)
                        if sc_name == "cold" and rep == args.repeats and s.ok:
                            size = report_size(project)
                            if size:
                                res.report_sizes[(n, name)] = size
                            take_snapshot(project, snaps[name])
                            have_snap[name] = True
                c = res.check.get(n)
                if c and c["status"] == "MISMATCH":
                    log(f"  !! best MISMATCH at N={n}: {c['detail']}")
            write_results()
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: writing partial results")
    except Exception:
        meta["crash"] = traceback.format_exc()
        log(meta["crash"])
    finally:
        if not args.keep_trash:
            Trash.empty()
        write_results(final=True)
        had_errors = any(r["error"] for r in res.rows.values())
        if not args.keep_workdir and not args.workdir and not had_errors and not args.keep_trash:
            shutil.rmtree(work, ignore_errors=True)
        elif had_errors:
            log(f"(errors: keeping {work} for the run outputs)")

    log(f"\nwrote {args.out / (stem + '.md')} (+ .json, latest.md, latest.json)\n")
    log((args.out / "latest.md").read_text())
    if interrupted or meta.get("crash"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
