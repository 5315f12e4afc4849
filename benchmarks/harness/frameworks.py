"""The two frameworks: where each one comes from (curifactory in its own virtual environment,
installed on first use; curifactory_like from this repository), the environment and command
line each is launched with, and the scratch copy of the workload project each one runs in."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .context import REPO_ROOT, WORKLOAD_DIR, log
from .scenarios import EXP_ARGS, STATE_DIRS, Scenario
from .timing import parse_json_blob

CF = "curifactory"
OURS = "curifactory_like"
ALL_FRAMEWORKS = (OURS, CF)
CF_VERSION = "0.20.5"

# modules imported by the "import floor" baseline (the framework's own modules that
# exist are imported; WORKLOAD.md section 5 uses cli, experiment, manager)
IMPORT_FLOOR_MODULES = ["{pkg}.cli", "{pkg}.experiment", "{pkg}.manager"]
IMPORT_FLOOR_LIBS = ["numpy", "pandas", "matplotlib.pyplot"]


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


def clean_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "BENCH_N", "PYTHONSTARTUP"):
        env.pop(k, None)
    env["MPLBACKEND"] = "Agg"
    if extra:
        env.update(extra)
    return env


def run_probe(argv: list[str], env: dict, cwd: str) -> tuple[bool, str]:
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
    ok, out = run_probe([python, "-c", VERSIONS_CODE], env, tempfile.gettempdir())
    return (parse_json_blob(out) or {}) if ok else {}


def setup_curifactory(venv: Path, ref_project: Path | None, no_install: bool) -> Framework:
    fw = Framework(CF)
    py, exe = venv / "bin" / "python", venv / "bin" / "experiment"
    env = clean_env(
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
    ok = py.exists() and exe.exists() and run_probe(check, env, tempfile.gettempdir())[0]
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
            here = lib_versions(sys.executable, clean_env())
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
        ok, out = run_probe(check, env, tempfile.gettempdir())
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
    env = clean_env()
    probe = [sys.executable, "-c", "import curifactory_like, sys; print(curifactory_like.__file__)"]
    ok, out = run_probe(probe, env, neutral)
    via_pythonpath = False
    if not ok or not _inside_repo(out.splitlines()[-1] if out else ""):
        # not installed, or installed from another checkout (e.g. an editable install of the
        # main worktree): measure this repository's package. Launched with `python -c`, the
        # project directory (cwd) stays first on sys.path, ahead of this repo's own
        # experiments/ and params/ packages.
        env2 = clean_env({"PYTHONPATH": str(REPO_ROOT)})
        ok2, out2 = run_probe(probe, env2, neutral)
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
        env=env,
        cwd=neutral,
        capture_output=True,
        timeout=300,
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
    ok, out = run_probe(fw.experiment + ["--help"], env, neutral)
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
