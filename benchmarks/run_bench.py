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
This file is the command line and the driver (the order of the runs); the
package harness/ beside it holds the rest, one module per concept.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

# The harness's modules are the package benchmarks/harness/ beside this file. Put this folder
# first on sys.path so that `import harness` finds that package whatever the cwd and however the
# script is started (python -P or -I leave the script's folder off sys.path), and never another
# module that happens to be called `harness`.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.context import DEFAULT_SHARED, REPO_ROOT, loadavg, log, machine_info, repo_commit
from harness.frameworks import (
    ALL_FRAMEWORKS,
    CF,
    Framework,
    build_project,
    clean_env,
    run_probe,
    setup_curifactory,
    setup_ours,
)
from harness.project_state import (
    FLOOR_LAUNCHER,
    Trash,
    clean_state,
    count_newer,
    newest_mtime,
    read_best,
    report_size,
    restore_snapshot,
    take_snapshot,
)
from harness.results import Results
from harness.scenarios import (
    DEFAULT_N,
    DEFAULT_SCENARIOS,
    QUICK_N,
    SCENARIO_BY_NAME,
    SCENARIOS,
)
from harness.timing import Sample, parse_json_blob, run_timed

HERE = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
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
    return ap


def list_scenarios() -> None:
    for s in SCENARIOS:
        flags = " ".join(s.flags) + (" [map]" if s.mode == "map" and s.kind == "project" else "")
        log(f"{s.name:17s} {s.kind:8s} {s.start:9s} {flags:30s} {s.desc}")


def select_runs(
    ap: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[list[int], list[str], list[str]]:
    """The values of N, the scenarios (in the table's order) and the frameworks to measure."""
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
    return ns, scen, frameworks


def make_workdir(ap: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    if args.workdir:
        work = Path(args.workdir).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="curifactory_like-bench-"))
    if work == REPO_ROOT or REPO_ROOT in work.parents:
        ap.error(f"--workdir {work} is inside the repository; use a directory outside it")
    return work


class Bench:
    """One invocation: what it measures, where, and the results so far (written after each N)."""

    def __init__(
        self,
        args: argparse.Namespace,
        argv: list[str] | None,
        ns: list[int],
        scen: list[str],
        frameworks: list[str],
        work: Path,
    ):
        self.args, self.ns, self.scen, self.frameworks, self.work = args, ns, scen, frameworks, work
        started = _dt.datetime.now()
        repo = repo_commit()
        self.meta: dict = {
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
        self.meta["loadavg_start"] = loadavg()
        self.res = Results(self.meta)
        args.out.mkdir(parents=True, exist_ok=True)
        self.stem = f"results-{started.strftime('%Y%m%d-%H%M%S')}-{repo['short']}"
        self.fws: dict[str, Framework] = {}
        self.floor_ok = False
        self.outdir = work / "out"

    def write_results(self, final: bool = False) -> None:
        args, meta = self.args, self.meta
        if final:
            meta["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
            meta["loadavg_end"] = loadavg()
        md = self.res.to_markdown(self.frameworks, self.ns, self.scen)
        (args.out / f"{self.stem}.md").write_text(md + "\n")
        (args.out / f"{self.stem}.json").write_text(
            json.dumps(self.res.to_json(), indent=1, default=str) + "\n"
        )
        shutil.copyfile(args.out / f"{self.stem}.md", args.out / "latest.md")
        shutil.copyfile(args.out / f"{self.stem}.json", args.out / "latest.json")

    def setup_frameworks(self) -> None:
        args = self.args
        for name in self.frameworks:
            fw = (
                setup_curifactory(args.cf_venv, args.reference_project, args.no_install)
                if name == CF
                else setup_ours(args.ours_cmd)
            )
            self.fws[name] = fw
            self.meta["frameworks"][name] = {**fw.info, "error": fw.error}
            if fw.error:
                log(f"!! {name} unavailable: {fw.error}")
            else:
                # warm-up (font cache, page cache, pyc), untimed
                run_probe(fw.fixed_argv(SCENARIO_BY_NAME["import_floor"]), fw.env, str(self.work))
                log(f"{name}: {' '.join(fw.experiment)}")

        self.floor_ok = args.floor.is_file()
        if any(SCENARIO_BY_NAME[s].kind == "floor" for s in self.scen) and not self.floor_ok:
            log(f"!! floor.py not found at {args.floor}; floor scenarios skipped")

    def do_run(self, sc_name, n, fwname, argv_, cwd, env, rep, label=None) -> Sample:
        out = self.outdir / f"{fwname}-N{n if n is not None else 'x'}-{label or sc_name}-r{rep}.out"
        s = run_timed(argv_, cwd, env, out, self.args.timeout)
        rss = f"{s.maxrss_mb:,.0f} MB" if s.maxrss_mb is not None else "?"
        status = "" if s.ok else f"  FAILED rc={s.rc}{' timeout' if s.timed_out else ''} ({out})"
        log(
            f"  [{label or sc_name:15s} N={n if n is not None else '-':>5}] {fwname:17s} rep {rep}: "
            f"{s.wall_s:8.2f} s  {rss}{status}"
        )
        return s

    def measure(self) -> None:
        self.run_fixed()
        self.write_results()
        for n in self.ns:
            self.run_n(n)

    def run_fixed(self) -> None:
        """The fixed (N-independent) scenarios."""
        res, work = self.res, self.work
        for sc_name in (s for s in self.scen if SCENARIO_BY_NAME[s].kind == "fixed"):
            sc = SCENARIO_BY_NAME[sc_name]
            for rep in range(1, self.args.repeats + 1):
                for name, fw in self.fws.items():
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
                        self.do_run(sc_name, None, name, fw.fixed_argv(sc), work, fw.env, rep),
                    )

    def run_n(self, n: int) -> None:
        """Every N-dependent scenario for one N: the floor, then the project scenarios."""
        args, res, scen = self.args, self.res, self.scen
        log(f"== N = {n}")
        # ---- floor: interleaved with the cold repeats when both are measured (one floor
        # repeat just before each repeat of the frameworks' cold runs), so the cold/floor
        # ratio compares runs taken under the same load; otherwise all repeats up front
        floor_scen = [s for s in scen if SCENARIO_BY_NAME[s].kind == "floor"]
        interleave = "cold" in scen and bool(floor_scen) and self.floor_ok

        for sc_name in floor_scen:
            if not self.floor_ok:
                res.fail(sc_name, n, "floor", f"floor.py not found at {args.floor}")
            elif not interleave:
                for rep in range(1, args.repeats + 1):
                    self.run_floor(sc_name, rep, n)

        # ---- project scenarios
        proj = [s for s in scen if SCENARIO_BY_NAME[s].kind == "project"]
        if not proj:
            self.write_results()
            return
        projects, snaps, have_snap = self.build_projects(n, proj)

        need_snapshot = any(SCENARIO_BY_NAME[s].start == "snapshot" for s in proj)
        if need_snapshot and "cold" not in proj:
            self.prep_cold(n, projects, snaps, have_snap)

        for sc_name in proj:
            self.run_project_scenario(
                sc_name, n, projects, snaps, have_snap, floor_scen if interleave else []
            )
            c = res.check.get(n)
            if c and c["status"] == "MISMATCH":
                log(f"  !! best MISMATCH at N={n}: {c['detail']}")
        self.write_results()

    def run_floor(self, sc_name: str, rep: int, n: int) -> None:
        args, res, work = self.args, self.res, self.work
        sc = SCENARIO_BY_NAME[sc_name]
        # the floor writes its files (tempfile.mkdtemp) in the work folder, beside the
        # projects: file creation cost on this kind of machine depends on where in the
        # file system a folder lives (measured 0.1 to 1.5 ms per new file at one time
        # between two folders of /tmp), so both sides should pay the same
        env = clean_env({"BENCH_N": str(n), "TMPDIR": str(work)})
        floor_cmd = [str(args.floor), "--mode", sc.floor_mode, "--json"]
        if Trash.folder is not None:  # its files go to the trash, like the projects'
            env["BENCH_TRASH"] = str(Trash.folder)
            floor_cmd = ["-c", FLOOR_LAUNCHER, *floor_cmd]
        s = self.do_run(
            sc_name,
            n,
            "floor",
            [sys.executable, *floor_cmd],
            work,
            env,
            rep,
        )
        blob = parse_json_blob(Path(s.out).read_text(errors="replace")) if s.ok else None
        res.add(sc_name, n, "floor", s, {"workload_s": blob.get("workload_s") if blob else None})
        if blob and "best" in blob and rep == 1:
            res.add_best(n, f"floor.py --mode {sc.floor_mode}", blob["best"])

    def build_projects(
        self, n: int, proj: list[str]
    ) -> tuple[dict[str, Path], dict[str, Path], dict[str, bool]]:
        """Each available framework's scratch project for this N, and where its snapshot goes."""
        projects: dict[str, Path] = {}
        snaps: dict[str, Path] = {}
        have_snap: dict[str, bool] = {}
        for name, fw in self.fws.items():
            if fw.error:
                continue
            projects[name] = self.work / name / "cfproj"
            snaps[name] = self.work / name / "snapshot"
            have_snap[name] = False
            try:
                build_project(fw, projects[name])
            except (subprocess.CalledProcessError, OSError) as e:
                fw_err = f"could not build the scratch project: {e}"
                for sc_name in proj:
                    self.res.fail(sc_name, n, name, fw_err)
                projects.pop(name)
        return projects, snaps, have_snap

    def prep_cold(
        self,
        n: int,
        projects: dict[str, Path],
        snaps: dict[str, Path],
        have_snap: dict[str, bool],
    ) -> None:
        """Untimed preparatory cold run to produce the warm snapshot (and the best check)."""
        res = self.res
        for name, fw in self.fws.items():
            if name not in projects:
                continue
            clean_state(projects[name])
            s = self.do_run(
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

    def run_project_scenario(
        self,
        sc_name: str,
        n: int,
        projects: dict[str, Path],
        snaps: dict[str, Path],
        have_snap: dict[str, bool],
        floor_before_cold: list[str],
    ) -> None:
        """Every repeat of one project scenario, the frameworks interleaved; for ``cold``, one
        repeat of each of ``floor_before_cold`` right before each repeat."""
        args, res = self.args, self.res
        sc = SCENARIO_BY_NAME[sc_name]
        for rep in range(1, args.repeats + 1):
            if sc_name == "cold":
                for floor_name in floor_before_cold:
                    self.run_floor(floor_name, rep, n)
            for name, fw in self.fws.items():
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
                s = self.do_run(
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
                        "cache_files_written": count_newer(project / "data" / "cache", t_restore)
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

    def finish(self) -> None:
        """Empty the trash, write the final results, delete the scratch space if it was ours."""
        args = self.args
        if not args.keep_trash:
            Trash.empty()
        self.write_results(final=True)
        had_errors = any(r["error"] for r in self.res.rows.values())
        if not args.keep_workdir and not args.workdir and not had_errors and not args.keep_trash:
            shutil.rmtree(self.work, ignore_errors=True)
        elif had_errors:
            log(f"(errors: keeping {self.work} for the run outputs)")


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)

    if args.list_scenarios:
        list_scenarios()
        return 0
    ns, scen, frameworks = select_runs(ap, args)
    work = make_workdir(ap, args)
    if not args.delete_between_repeats:
        Trash.folder = work / "trash"

    bench = Bench(args, argv, ns, scen, frameworks, work)
    log(f"workdir: {work}")
    log(f"N={ns} scenarios={scen} repeats={args.repeats} frameworks={frameworks}")
    bench.setup_frameworks()

    interrupted = False
    try:
        bench.measure()
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: writing partial results")
    except Exception:
        bench.meta["crash"] = traceback.format_exc()
        log(bench.meta["crash"])
    finally:
        bench.finish()

    log(f"\nwrote {args.out / (bench.stem + '.md')} (+ .json, latest.md, latest.json)\n")
    log((args.out / "latest.md").read_text())
    if interrupted or bench.meta.get("crash"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
