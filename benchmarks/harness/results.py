"""The results of a run: every raw sample and the ``best`` checks, rendered as the markdown
table (medians, ratios, derived figures, warnings, errors) and as JSON."""

from __future__ import annotations

import json
import statistics

from .frameworks import CF, CF_VERSION, OURS
from .project_state import best_equal
from .scenarios import SCENARIO_BY_NAME, stage_calls
from .timing import Sample, self_timed_report, tail


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
                "harness/project_state.py: on ext4 without a journal, deleting thousands of "
                "files slows the next run's file creations); so is the folder floor.py writes"
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
                    parts.append(
                        f"report (self-timed, in the log) = {fmt_s(warm['report_median_s'])} s"
                    )
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
            L += (
                ["## Scaling (median at the larger N / median at the smaller N)", ""]
                + scaling
                + [""]
            )
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


def _ratios(pairs: list[float]) -> str:
    """``a, b, c (median m)`` for per-repeat ratios."""
    listed = ", ".join(f"{r:.2f}" for r in pairs)
    return f"{listed} (median {statistics.median(pairs):.2f})"
