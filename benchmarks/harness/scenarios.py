"""What is measured: the workload's command line, the folders a run creates, and the table of
scenarios (start state, CLI form and flags of each) with the default selections."""

from __future__ import annotations

from dataclasses import dataclass

EXP_ARGS = ["bench", "-p", "bench_params"]
STATE_DIRS = ("data", "reports", "logs", "notebooks")  # what a run may create in the project
SNAPSHOT_DIRS = ("data", "reports", "logs")  # WORKLOAD.md section 5


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


def stage_calls(n: int) -> int:
    """Stage calls of the workload: 4 stages per record + the aggregate."""
    return 4 * n + 1
