"""Running one command under a timer, and reading what it printed.

``run_timed`` runs a whole process with stdout+stderr to a file and returns its ``Sample``
(wall time, CPU time and peak RSS from ``os.wait4``); the helpers below read that file back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path


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


def tail(path: str | Path, n: int = 15) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def parse_json_blob(text: str) -> dict | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        return json.loads(text[start : end + 1])
    except ValueError:
        return None
