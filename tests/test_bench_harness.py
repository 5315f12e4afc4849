"""The benchmark harness (``benchmarks/run_bench.py``), run in a subprocess as a user runs it.

Only curifactory_like is measured, at N=10 with one repeat: curifactory would need its own
virtual environment, and ``--no-install`` makes sure the harness never tries to create one. The
scenarios used need nothing outside the repository (no ``shared/bench``: the floor scenarios are
not asked for), and every file the harness writes goes under ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_IN_REPO = REPO_ROOT / "benchmarks" / "results"
N = 10
SCENARIOS = ("cold", "warm")
REPEATS = 1
OURS = "curifactory_like"


def harness_env() -> dict[str, str]:
    """This environment without the harness's own variables (workdir, curifactory's venv, N)
    and without distributed-rank variables."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BENCH_") and k not in ("RANK", "LOCAL_RANK", "NODE_RANK")
    }


def framework_rows(markdown: str) -> dict[tuple[str, str], list[str]]:
    """The rows of the "Framework runs" table, by (scenario, N), as lists of cells."""
    rows = {}
    lines = markdown.split("## Framework runs", 1)[1].split("\n## ", 1)[0].splitlines()
    for line in lines:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] != "scenario":
            rows[(cells[0], cells[1])] = cells
    return rows


def test_harness_measures_cold_and_warm(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    results_before = sorted(RESULTS_IN_REPO.iterdir()) if RESULTS_IN_REPO.exists() else []
    command = [
        sys.executable,
        "benchmarks/run_bench.py",
        "--n",
        str(N),
        "--scenarios",
        *SCENARIOS,
        "--frameworks",
        OURS,
        "--repeats",
        str(REPEATS),
        "--no-install",
        "--workdir",
        str(work),
        "--out",
        str(out),
    ]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=harness_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    written = sorted(out.glob("results-*.md"))
    assert len(written) == 1, sorted(p.name for p in out.iterdir())
    markdown = written[0].read_text()
    assert (out / "latest.md").read_text() == markdown

    rows = framework_rows(markdown)
    for scenario in SCENARIOS:
        row = rows[(scenario, str(N))]
        # scenario | N | curifactory median | curifactory_like median | ratio | RSS cf | RSS ours | check
        assert row[2] == "–", row  # curifactory was not measured
        assert float(row[3]) > 0, row
        assert row[7] != "MISMATCH", row

    raw = json.loads(written[0].with_suffix(".json").read_text())
    assert raw["meta"]["N"] == [N] and raw["meta"]["repeats"] == REPEATS
    assert list(raw["meta"]["frameworks"]) == [OURS]
    by_key = {(r["scenario"], r["N"], r["framework"]): r for r in raw["rows"]}
    for scenario in SCENARIOS:
        row = by_key[(scenario, N, OURS)]
        assert row["error"] is None, row["error"]
        assert len(row["samples"]) == REPEATS
        assert all(s["rc"] == 0 and s["wall_s"] > 0 for s in row["samples"]), row["samples"]

    # the run's outputs went to --out and --workdir only
    assert (sorted(RESULTS_IN_REPO.iterdir()) if RESULTS_IN_REPO.exists() else []) == results_before
