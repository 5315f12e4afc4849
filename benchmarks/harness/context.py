"""Where and on what a benchmark runs: the harness's paths, the repository's commit, the
machine, and the progress lines it prints."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent  # benchmarks/
REPO_ROOT = BENCH_DIR.parent
WORKLOAD_DIR = BENCH_DIR / "workload"
DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "bench"


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


def loadavg() -> list[float] | None:
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
