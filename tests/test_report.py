"""The run report (reports/<ref>/index.html), the runs index and the report server.

Experiments run for real in a throw-away project; the pages are parsed with lxml and checked
element by element (info block, table of contents, reportables, stage graph, stage detail,
parameter sets), not just for existence.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import lxml.html
import pytest

import curifactory_like as cf
from curifactory_like.experiment import run_experiment
from curifactory_like.reporting import dag_graph, report
from curifactory_like.reporting.report import (
    render_report_argset_dump,
    render_run_report,
    update_report_index,
)
from curifactory_like.reporting.serve import make_report_server, serve_reports
from curifactory_like.store import RunStore

SCRIPT = "<script>alert(1)</script>"
IMG_ATTACK = '<img src=x onerror="alert(2)">'

PARAMS = """
from dataclasses import dataclass

import curifactory_like as cf


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 1
    label: str = "plain"


def get_params():
    return [Params(name="a", n=1), Params(name="b", n=2, label="second")]
"""

HOSTILE_PARAMS = f"""
from params.rep import Params


def get_params():
    return [Params(name={SCRIPT!r}, n=1, label={IMG_ATTACK!r})]
"""

EXPERIMENT = '''
"""Two cached stages, a reporting stage without outputs, and an aggregate with a figure."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

import curifactory_like as cf
from curifactory_like.caching import JsonCacher
from curifactory_like.reporting import (
    DFReporter,
    FigureReporter,
    HTMLReporter,
    ImageReporter,
    JsonReporter,
    LatexTableReporter,
    LinePlotReporter,
)


@cf.stage(outputs=["numbers"], cachers=[JsonCacher])
def make_numbers(record):
    return list(range(record.params.n + 2))


@cf.stage(inputs=["numbers"], outputs=["total"], cachers=[JsonCacher])
def add_up(record, numbers):
    return sum(numbers)


@cf.stage(inputs=["numbers", "total"])
def describe(record, numbers, total):
    df = pd.DataFrame({"value": numbers, "square": [v * v for v in numbers]})
    record.report(DFReporter(df, name="table", group="tables"))
    record.report(LatexTableReporter(df, name="latex", group="tables"))
    record.report(JsonReporter({"total": total, "label": record.params.label}, name="summary"))
    record.report(LinePlotReporter(numbers, name="line", group="plots"))
    record.report(HTMLReporter("<em class='trusted'>trusted html</em>", name="html"))


@cf.aggregate(inputs=["total"], outputs=["totals"], cachers=[JsonCacher])
def compare(record, records, total):
    values = [total[r] for r in records]
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(values)
    fig.savefig("image.png")
    record.report(FigureReporter(fig, name="totals_figure", group="plots"))
    plt.close(fig)
    record.report(ImageReporter("image.png", name="image"))
    return values


def run(param_sets, manager):
    records = [describe(add_up(make_numbers(cf.Record(manager, p)))) for p in param_sets]
    compare(cf.Record(manager, None), records)
'''

FAILING = """
import curifactory_like as cf
from curifactory_like.caching import JsonCacher
from experiments.rep import add_up, make_numbers


@cf.stage(inputs=["total"], outputs=["ratio"], cachers=[JsonCacher])
def divide(record, total):
    raise ZeroDivisionError("cannot divide <b>by</b> zero")


@cf.stage(inputs=["ratio"], outputs=["final"], cachers=[JsonCacher])
def finish(record, ratio):
    return ratio


def run(param_sets, manager):
    for param_set in param_sets:
        finish(divide(add_up(make_numbers(cf.Record(manager, param_set)))))
"""

MAP_FAILURE = """
def run(param_sets, manager):
    raise RuntimeError("broken before any stage <i>x</i>")
"""

HOSTILE_EXPERIMENT = f"""
import curifactory_like as cf
from curifactory_like.caching import JsonCacher
from curifactory_like.reporting import DFReporter, JsonReporter
import pandas as pd


@cf.stage(outputs=["text"], cachers=[JsonCacher])
def emit(record):
    record.report(JsonReporter({{"payload": {SCRIPT!r}}}, name={IMG_ATTACK!r}))
    record.report(DFReporter(pd.DataFrame({{{SCRIPT!r}: [{IMG_ATTACK!r}]}}), name="cells"))
    return {SCRIPT!r}


def run(param_sets, manager):
    for param_set in param_sets:
        emit(cf.Record(manager, param_set))
"""

MISSING_INPUT = """
import curifactory_like as cf
from curifactory_like.caching import JsonCacher


@cf.stage(inputs=["never_made"], outputs=["y"], cachers=[JsonCacher])
def needs(record, never_made):
    return never_made


def run(param_sets, manager):
    for param_set in param_sets:
        needs(cf.Record(manager, param_set))
"""

STAGES_PER_RECORD = ("make_numbers", "add_up", "describe")


def write_project(project: Any) -> None:
    """The experiments and parameter files of these tests."""
    project.params("rep", PARAMS)
    project.params("hostile", HOSTILE_PARAMS)
    project.experiment("rep", EXPERIMENT)
    project.experiment("failing", FAILING)
    project.experiment("mapfail", MAP_FAILURE)
    project.experiment("hostile", HOSTILE_EXPERIMENT)
    project.experiment("missing", MISSING_INPUT)


def run(name: str, params: str | None = None, **options: Any) -> Any:
    """Run experiment ``name`` in the current project and return its manager."""
    _, manager = run_experiment(name, [params or name], **options)
    return manager


def _xpath_step(simple: str) -> str:
    """One compound CSS selector (``tag#id.class``) as an XPath step."""
    match = re.fullmatch(r"([a-z0-9*]*)((?:[#.][\w-]+)*)", simple)
    assert match, f"unsupported selector {simple!r}"
    tag = match.group(1) or "*"
    tests = []
    for kind, name in re.findall(r"([#.])([\w-]+)", match.group(2)):
        if kind == "#":
            tests.append(f"@id='{name}'")
        else:
            tests.append(f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')")
    return tag + "".join(f"[{t}]" for t in tests)


def select(element: Any, selector: str) -> list[Any]:
    """Elements below ``element`` matching a small CSS subset (tags, #id, .class, ' ', '>', ',').

    lxml's ``cssselect`` needs the ``cssselect`` package; this subset is all these tests use.
    """
    paths = []
    for alternative in selector.split(","):
        path = "."
        child = False
        for token in alternative.split():
            if token == ">":
                child = True
                continue
            path += ("/" if child else "//") + _xpath_step(token)
            child = False
        paths.append(path)
    found = {id(e): e for path in paths for e in element.xpath(path)}
    return [e for e in element.iter() if id(e) in found]


def page(path: str | os.PathLike[str]) -> Any:
    """The parsed HTML page at ``path``."""
    return lxml.html.fromstring(Path(path).read_text(encoding="utf-8"))


def report_of(manager: Any) -> Any:
    return page(Path(manager.reports_path) / manager.get_reference_name() / "index.html")


def info(doc: Any) -> dict[str, Any]:
    """The info block as ``{label: <dd> element}``."""
    block = doc.get_element_by_id("info")
    terms = select(block, "dl.info > dt")
    return {dt.text_content().strip(): dt.getnext() for dt in terms}


def text(element: Any) -> str:
    return " ".join(element.text_content().split())


def cells(row: Any) -> list[str]:
    """The texts of a table row's cells."""
    return [text(cell) for cell in row if cell.tag in ("td", "th")]


def stage_nodes(doc: Any) -> list[Any]:
    return [g for g in select(doc, "svg.dag g.node") if "stage" in g.get("class").split()]


def node_states(doc: Any) -> dict[str, str]:
    """``{stage node id: state class}`` of the stage graph."""
    states = {}
    for node in stage_nodes(doc):
        classes = node.get("class").split()
        states[node.get("id")] = [c for c in classes if c not in ("node", "stage")][0]
    return states


@pytest.fixture
def rep(project: Any) -> Any:
    """A project with this module's experiments."""
    write_project(project)
    return project


@pytest.fixture
def cold(rep: Any) -> Any:
    """The manager of a first (all computing) run of ``rep``, with notes."""
    return run("rep", notes="first line of the notes\nsecond <b>line</b>")


# ---------------------------------------------------------------------- info block


def test_info_block_shows_the_run(cold: Any) -> None:
    """The info block names experiment, run, reference, times, status, git, params, lines."""
    fields = info(report_of(cold))
    assert text(fields["Experiment"]) == "rep"
    assert text(fields["Run number"]) == str(cold.experiment_run_number)
    assert text(fields["Reference"]) == cold.get_reference_name()
    assert text(fields["Started"]) == cold.run_timestamp.strftime("%Y-%m-%d %H:%M:%S")
    assert cold.run_end_timestamp.strftime("%Y-%m-%d %H:%M:%S") in text(fields["Ended"])
    assert text(fields["Status"]) == "COMPLETE"
    assert "no git repository found" in text(fields["Git commit"]).lower()
    assert text(fields["Run line"]) == cold.run_line
    assert fields["Notes"].text_content() == "first line of the notes\nsecond <b>line</b>"


def test_info_block_lists_parameter_sets_with_hashes(cold: Any) -> None:
    """Every parameter set of every parameter file is listed with its hash and linked."""
    listed = info(report_of(cold))["Parameter files"]
    assert "rep" in text(listed)
    expected = {name: digest for name, digest in cold.param_file_param_sets["rep"]}
    links = {a.text_content(): a.get("href") for a in select(listed, "a")}
    assert links == {name: f"#params-{digest}" for name, digest in expected.items()}
    assert all(digest in text(listed) for digest in expected.values())


def _committed_repo(root: Path) -> Any:
    """A git repository at ``root`` with the experiment committed (the rest left untracked)."""
    git = pytest.importorskip("git")
    repo = git.Repo.init(root)
    with repo.config_writer() as config:
        config.set_value("user", "name", "Report Test")
        config.set_value("user", "email", "report@example.com")
    repo.index.add(["experiments/rep.py"])
    repo.index.commit("initial")
    return repo


def test_info_block_shows_git_commit_branch_and_dirty_marker(rep: Any) -> None:
    """In a git repository with uncommitted changes: full commit, branch and the '*' marker."""
    repo = _committed_repo(rep.root)
    manager = run("rep")
    fields = info(report_of(manager))
    commit = fields["Git commit"]
    assert select(commit, "code")[0].text_content() == repo.head.commit.hexsha
    assert select(commit, ".dirty")[0].text_content() == "*"
    assert select(commit, "code.branch")[0].text_content() == repo.active_branch.name


def test_info_block_lists_at_most_200_untracked_files_and_counts_all(rep: Any) -> None:
    """Thousands of untracked files would swell the page: it lists the first 200, says how many
    there are, and the run registry keeps every one."""
    from curifactory_like.store import RunStore

    _committed_repo(rep.root)
    (rep.root / "scratch").mkdir()
    for number in range(250):
        (rep.root / "scratch" / f"note{number:03d}.txt").write_text("x")
    manager = run("rep")
    commit = info(report_of(manager))["Git commit"]
    listed = select(commit, "pre.untracked")[0].text_content().splitlines()
    assert len(listed) == 200 and "scratch/note000.txt" in listed
    assert "first 200; all are in the run registry" in text(commit)
    total = len(manager.git_info.untracked)
    assert f"and {total} untracked files" in text(commit) and total >= 250
    with RunStore("data") as store:
        stored = store.get_run(manager.get_reference_name())["git_untracked"]
    assert all(f"scratch/note{number:03d}.txt" in stored for number in range(250))


def test_log_is_copied_and_linked(rep: Any) -> None:
    """The `experiment` command's log is copied into the report as log.txt and linked."""
    from _projects import run_cli

    result = run_cli(rep.root, "run", "rep", "-p", "rep")
    assert result.returncode == 0, result.stderr
    folder = rep.root / "reports" / "_latest"
    doc = page(folder / "index.html")
    assert [a.get("href") for a in select(info(doc)["Log"], "a")] == ["log.txt"]
    assert "Running experiment rep" in (folder / "log.txt").read_text(encoding="utf-8")


# ---------------------------------------------------------------------- contents and reportables


def test_table_of_contents_links_resolve(cold: Any) -> None:
    """Every '#...' link of the table of contents names an element of the page."""
    doc = report_of(cold)
    ids = {element.get("id") for element in doc.iter() if element.get("id")}
    hrefs = [a.get("href") for a in select(doc.get_element_by_id("toc"), "a")]
    fragments = [urllib.parse.unquote(h[1:]) for h in hrefs if h.startswith("#")]
    assert {"info", "reportables", "plan", "map", "stage_detail", "params"} <= set(fragments)
    assert [f for f in fragments if f not in ids] == []
    assert len(fragments) == 6 + len(cold.reportables) + 2  # sections, reportables, 2 groups


def test_reportables_are_grouped_then_in_order(cold: Any) -> None:
    """Grouped reportables come first (groups in first-seen order), then the ungrouped ones."""
    section = report_of(cold).get_element_by_id("reportables")
    titles = [
        h3.text_content().strip()
        for h3 in select(section, "h3.reportable-group-title, div.reportable > h3")
    ]
    assert titles == [
        "tables",
        "a_describe_table",
        "a_describe_latex",
        "b_describe_table",
        "b_describe_latex",
        "plots",
        "a_describe_line",
        "b_describe_line",
        "(Aggregate)_compare_totals_figure",
        "a_describe_summary",
        "a_describe_html",
        "b_describe_summary",
        "b_describe_html",
        "(Aggregate)_compare_image",
    ]


def test_every_reportable_kind_is_rendered(cold: Any) -> None:
    """Tables, LaTeX, JSON, trusted HTML and the image files of figures are in the report."""
    folder = Path(cold.reports_path) / cold.get_reference_name()
    section = report_of(cold).get_element_by_id("reportables")
    table = select(section, "table.dataframe")[0]
    assert [th.text_content() for th in select(table, "thead th")] == ["", "value", "square"]
    assert [td.text_content() for td in select(select(table, "tbody tr")[2], "td")] == ["2", "4"]
    assert "\\begin{tabular}" in section.text_content()
    assert '"label": "second"' in section.text_content()
    assert select(section, "em.trusted")[0].text_content() == "trusted html"
    images = [img.get("src") for img in select(section, "img")]
    assert len(images) == 4  # two line plots, the figure, the image
    for src in images:
        assert (folder / urllib.parse.unquote(src)).stat().st_size > 0


def test_a_broken_reportable_does_not_cost_the_report(rep: Any) -> None:
    """A reportable whose html() raises is shown as an error; the rest of the report is there."""
    rep.experiment(
        "broken",
        """
        import curifactory_like as cf
        from curifactory_like.reporting import JsonReporter, Reportable

        class Broken(Reportable):
            def html(self):
                raise ValueError("no html today")

        @cf.stage(outputs=["x"])
        def emit(record):
            record.report(Broken(name="broken"))
            record.report(JsonReporter({"fine": True}, name="fine"))
            return 1

        def run(param_sets, manager):
            for param_set in param_sets:
                emit(cf.Record(manager, param_set))
        """,
    )
    from curifactory_like.errors import CurifactoryWarning

    with pytest.warns(CurifactoryWarning, match="cannot be rendered"):  # not cached for reruns
        manager = run("broken", "rep")
    assert manager.status == "complete"
    doc = report_of(manager)
    broken = select(doc, "div.reportable.broken")
    assert len(broken) == 2
    assert "ValueError: no html today" in text(broken[0])
    assert '"fine": true' in doc.get_element_by_id("reportables").text_content()


# ---------------------------------------------------------------------- stage graph and detail


def test_stage_graph_has_one_node_per_stage_call(cold: Any) -> None:
    """The inline SVG has a node per stage call, every one computed on a first run."""
    doc = report_of(cold)
    states = node_states(doc)
    assert len(states) == 2 * len(STAGES_PER_RECORD) + 1
    assert set(states.values()) == {"computed"}
    assert sorted(states) == sorted([f"c{r}_{p}" for r in range(2) for p in range(3)] + ["c2_0"])
    clusters = select(doc, "svg.dag g.cluster")
    assert len(clusters) == 3
    links = select(doc, "svg.dag g.cluster a")
    hrefs = {a.get("xlink:href") for a in links}
    assert hrefs == {"#record-0", "#record-1", "#record-2"}


def test_stage_graph_distinguishes_loaded_and_skipped(cold: Any) -> None:
    """On a rerun, cached inputs of the reporting stage are loaded and the aggregate skipped."""
    states = node_states(report_of(run("rep")))
    assert states == {
        "c0_0": "loaded",
        "c0_1": "loaded",
        "c0_2": "computed",
        "c1_0": "loaded",
        "c1_1": "loaded",
        "c1_2": "computed",
        "c2_0": "skipped",
    }


def test_stage_graph_legend_counts_states(cold: Any) -> None:
    """The legend line above the graph counts the calls of each state."""
    counts = text(select(report_of(run("rep")), "#map p.counts")[0])
    assert "7 stage calls" in counts
    assert "2 computed" in counts
    assert "4 loaded" in counts
    assert "1 skipped" in counts
    assert "0 failed" in counts


def test_stage_detail_lists_calls_reasons_and_artifacts(cold: Any) -> None:
    """Per record: a header row, then stage, action, reason, artifact, preview, file and size."""
    doc = report_of(run("rep"))
    header = doc.get_element_by_id("record-0")
    assert "Record 0" in text(header) and "a" in text(header)
    rows = select(doc, "#stage_detail table.calls tr.call")
    assert len(rows) == 7
    stage, action, _, reason, artifact, preview, path, size = cells(rows[1])
    assert (stage, action, artifact, preview) == ("add_up", "loaded", "total", "(int) 3")
    assert reason.startswith("cached; read by describe")
    assert path.endswith("add_up_total.json")
    assert size.endswith(" B")
    prefix = select(header, ".prefix code")[0].text_content()
    assert (Path(prefix + path.lstrip("…"))).is_file()
    aggregate = doc.get_element_by_id("record-2")
    assert "aggregate of 2" in text(aggregate)
    assert cells(rows[6])[:2] == ["compare", "skipped"]


def test_parameter_sets_show_their_hash_representation(cold: Any) -> None:
    """The parameter sets section lists every set with its hash and field values."""
    section = report_of(cold).get_element_by_id("params")
    for name, digest in cold.param_file_param_sets["rep"]:
        row = section.get_element_by_id(f"params-{digest}")
        assert select(row, "th")[0].text_content() == name
    header = [th.text_content() for th in select(section, "table.many thead th")]
    assert header == ["name", "hash", "n", "label"]
    hashes = dict(cold.param_file_param_sets["rep"])
    body = [cells(tr) for tr in select(section, "table.many tbody tr")]
    assert body == [["a", hashes["a"], "1", "'plain'"], ["b", hashes["b"], "2", "'second'"]]


def test_parameter_sets_list_shared_values_once(rep: Any) -> None:
    """Fields equal in all parameter sets are listed once above the table of the others."""
    rep.params(
        "shared",
        """
        from params.rep import Params

        def get_params():
            return [Params(name="x", n=1), Params(name="y", n=2), Params(name="z", n=3)]
        """,
    )
    section = report_of(run("rep", "shared")).get_element_by_id("params")
    shared = [cells(tr) for tr in select(section, "table.shared tr")]
    assert shared == [["label", "'plain'"]]
    header = [th.text_content() for th in select(section, "table.many thead th")]
    assert header == ["name", "hash", "n"]


def test_argset_dump_is_curifactorys_escaped_layout(cold: Any) -> None:
    """render_report_argset_dump: heading, <pre>, escaped JSON, </pre> per parameter set."""
    manager = cf.ArtifactManager("dump", status_override=None)
    cf.Record(manager, cold.dag.records[0].params)
    lines = render_report_argset_dump(manager)
    assert len(lines) == 4
    assert lines[1] == "<pre>" and lines[3] == "</pre>"
    assert json.loads(lines[2].replace("&#34;", '"'))["n"] == "1"


# ---------------------------------------------------------------------- failures


def test_failed_run_report_shows_error_and_stops(rep: Any) -> None:
    """A stage that raises: error text and traceback, a failed node, later calls not run."""
    manager = run("failing", "rep")
    assert manager.status == "error"
    doc = report_of(manager)
    status = info(doc)["Status"]
    assert "ERROR" in text(status)
    assert "cannot divide <b>by</b> zero" in text(select(status, ".error-text")[0])
    assert "ZeroDivisionError" in select(status, "pre.traceback")[0].text_content()
    assert select(status, "b") == []
    states = node_states(doc)
    assert states["c0_2"] == "failed"
    assert states["c0_3"] == "notrun"
    assert {states[f"c1_{p}"] for p in range(4)} == {"notrun"}
    assert cells(select(doc, "tr.call.failed")[0])[:2] == ["divide", "failed"]


def test_mapping_failure_still_writes_a_report(rep: Any) -> None:
    """An experiment that fails before any stage is mapped still gets a report with the error."""
    manager = run("mapfail", "rep")
    assert manager.status == "error"
    doc = report_of(manager)
    assert "broken before any stage <i>x</i>" in text(info(doc)["Status"])
    assert select(doc, "#info i") == []
    assert "No stages were recorded" in text(doc.get_element_by_id("map"))
    assert select(doc, "svg") == []
    assert (Path(manager.reports_path) / "_latest" / "index.html").is_file()


def test_planning_failure_report_shows_mapped_calls_not_run(rep: Any) -> None:
    """Mapped but unplannable (a missing input): the error, and every mapped call as not run."""
    manager = run("missing", "rep")
    assert manager.status == "error"
    doc = report_of(manager)
    assert "MissingInputError" in text(info(doc)["Status"])
    assert node_states(doc) == {"c0_0": "notrun", "c1_0": "notrun"}
    assert [cells(row)[:2] for row in select(doc, "tr.call")] == [["needs", "not run"]] * 2


def test_failed_cli_run_exits_non_zero_with_report_and_index(rep: Any) -> None:
    """`experiment run` of a failing experiment: non-zero exit, report and index row written."""
    from _projects import run_cli

    result = run_cli(rep.root, "run", "failing", "-p", "rep")
    assert result.returncode != 0
    index = page(rep.root / "reports" / "index.html")
    rows = select(index, "table.runs tbody tr")
    assert len(rows) == 1
    assert "ERROR" in text(rows[0]) and "ZeroDivisionError" in text(rows[0])
    href = select(rows[0], "td.reference a")[0].get("href")
    assert (rep.root / "reports" / href).is_file()


def test_report_without_dot_says_why(rep: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """Without graphviz's `dot` on PATH the report explains the missing graph, keeps the rest."""
    empty = tmp_path / "no-binaries"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    manager = run("rep")
    folder = Path(manager.reports_path) / manager.get_reference_name()
    doc = report_of(manager)
    assert select(doc, "svg") == []
    note = text(select(doc, "#map .graph-missing")[0])
    assert "'dot' program was not found" in note and "graphs/dag.gv" in note
    assert (folder / "graphs" / "dag.gv").read_text().startswith("digraph run {")
    assert len(select(doc, "#stage_detail tr.call")) == 7


def test_large_run_draws_summary_graph_and_records_page(rep: Any, monkeypatch: Any) -> None:
    """Above the size limits: a summary graph and the per-record detail on records.html."""
    monkeypatch.setattr(dag_graph, "FULL_GRAPH_MAX_NODES", 5)
    monkeypatch.setattr(report, "INLINE_DETAIL_MAX_CALLS", 5)
    manager = run("rep")
    folder = Path(manager.reports_path) / manager.get_reference_name()
    doc = report_of(manager)
    assert "too many to draw one by one" in text(select(doc, "#map .summary-note")[0])
    assert node_states(doc) == {
        "g0_0": "computed",
        "g0_1": "computed",
        "g0_2": "computed",
        "g1_0": "computed",
    }
    assert "2 computed" in text(select(doc, "svg.dag")[0])
    assert select(doc, "#stage_detail table.calls") == []
    assert [a.get("href") for a in select(doc, "#stage_detail .note a")] == ["records.html"]
    summary = [cells(tr) for tr in select(doc, "table.stage-summary tbody tr")]
    assert [row[:7] for row in summary] == [
        ["make_numbers", "2", "2", "0", "0", "0", "0"],
        ["add_up", "2", "2", "0", "0", "0", "0"],
        ["describe", "2", "2", "0", "0", "0", "0"],
        ["compare (aggregate)", "1", "1", "0", "0", "0", "0"],
    ]
    records = page(folder / "records.html")
    assert len(select(records, "tr.call")) == 7
    assert records.get_element_by_id("record-1") is not None


def _inline_svg(manager: Any) -> str:
    html = (Path(manager.reports_path) / manager.get_reference_name() / "index.html").read_text()
    match = re.search(r'<svg class="dag".*?</svg>', html, re.S)
    assert match, "no stage graph in the report"
    return match.group(0)


def _drawn_now(manager: Any) -> str | None:
    """The SVG ``dot`` draws now from the DOT source the report saved."""
    folder = Path(manager.reports_path) / manager.get_reference_name()
    source = (folder / "graphs" / "dag.gv").read_text(encoding="utf-8")
    svg = dag_graph.render_svg(source).svg
    return svg.strip() if svg is not None else None


@pytest.mark.parametrize("runs", [["rep"], ["rep", "rep"], ["failing"]])
def test_stage_graph_drawn_during_the_run_is_the_graph_of_how_it_ended(
    rep: Any, runs: list[str], caplog: Any
) -> None:
    """The graph is laid out from the plan while the stages run; the report shows that drawing
    only when the run ended as planned (a first run, a rerun that loads and skips), and draws the
    graph of what happened otherwise (a failed stage): either way the very SVG that the saved
    DOT source gives."""
    caplog.set_level("DEBUG", logger="curifactory_like.reporting.graph_prefetch")
    for name in runs:
        caplog.clear()
        manager = run(name, "rep", log_debug=True)
    used = "The stage graph was drawn while the run executed" in caplog.text
    assert used == (name != "failing")
    assert ("did not go as planned" in caplog.text) == (name == "failing")
    assert _inline_svg(manager) == _drawn_now(manager)
    assert manager.graph_prefetch is None  # taken or discarded, its process ended


def test_no_graph_is_drawn_for_a_run_without_report(rep: Any, caplog: Any) -> None:
    """``--no-report`` runs never start ``dot``."""
    caplog.set_level("DEBUG", logger="curifactory_like.reporting.graph_prefetch")
    manager = run("rep", log_debug=True, report=False)
    assert manager.graph_prefetch is None
    assert not (Path(manager.reports_path) / manager.get_reference_name()).exists()


# ---------------------------------------------------------------------- hostile input


def test_hostile_names_and_values_are_shown_as_text(rep: Any) -> None:
    """A parameter set named <script>..., HTML values and reportable names stay text."""
    manager = run("hostile")
    folder = Path(manager.reports_path) / manager.get_reference_name()
    source = (folder / "index.html").read_text(encoding="utf-8")
    doc = lxml.html.fromstring(source)
    assert select(doc, "script") == []
    assert [e for e in doc.iter() if e.get("onerror") is not None] == []
    assert all(img.get("src").startswith("reportables/") for img in select(doc, "img"))
    body = doc.text_content()
    assert SCRIPT in body  # parameter set name, JSON value, table header, artifact preview
    assert IMG_ATTACK in body  # parameter value and reportable name
    assert SCRIPT in text(info(doc)["Parameter files"])
    assert IMG_ATTACK in text(doc.get_element_by_id("params"))
    assert f"{SCRIPT}_emit_{IMG_ATTACK}" in text(doc.get_element_by_id("reportables"))
    assert SCRIPT in text(select(doc, "svg.dag")[0])
    assert "<script" not in source.replace("&lt;script", "")


def test_hostile_names_in_curifactorys_record_subgraph_are_escaped(rep: Any) -> None:
    """_add_record_subgraph escapes names and previews: dot renders them as text."""
    from graphviz import Digraph

    from curifactory_like.caching import JsonCacher

    manager = cf.ArtifactManager("sub", status_override="LIVE")

    @cf.stage(outputs=["out"], cachers=[JsonCacher])
    def emit(record):
        return IMG_ATTACK

    record = emit(cf.Record(manager, cf.ExperimentParameters(name=SCRIPT)))
    dot = Digraph()
    dag_graph._add_record_subgraph(dot, 0, record, manager)
    svg = dot.pipe(format="svg").decode("utf-8")
    parsed = lxml.html.fromstring(svg[svg.index("<svg") :])
    assert select(parsed, "script") == [] and select(parsed, "img") == []
    assert [e for e in parsed.iter() if e.get("onerror") is not None] == []
    assert f"params: {SCRIPT}" in parsed.text_content()


# ---------------------------------------------------------------------- latest, store-full, index


def test_latest_points_at_the_newest_report(cold: Any) -> None:
    """reports/_latest is the report of the last run."""
    second = run("rep")
    latest = Path(second.reports_path) / "_latest"
    assert text(info(page(latest / "index.html"))["Reference"]) == second.get_reference_name()
    if latest.is_symlink():
        assert os.readlink(latest) == second.get_reference_name()


def test_store_full_run_keeps_a_copy_of_the_report(rep: Any) -> None:
    """A --store-full run copies the whole report folder into its run folder."""
    manager = run("rep", store_full=True)
    stored = Path(manager.get_run_output_path("report"))
    assert (stored / "index.html").read_text() == Path(manager.report_path).read_text()
    assert sorted(p.name for p in (stored / "reportables").iterdir()) == sorted(
        p.name for p in (Path(manager.report_path).parent / "reportables").iterdir()
    )


def test_style_sheets_are_copied(rep: Any) -> None:
    """report.css and style.css (the package's when report_css_path is missing) are copied."""
    manager = run("rep")
    folder = Path(manager.report_path).parent
    assert "table.calls" in (folder / "report.css").read_text()
    assert (folder / "style.css").stat().st_size > 0
    own = Path(manager.reports_path) / "style.css"
    own.write_text("body { color: rebeccapurple; }")
    manager = run("rep")
    assert (Path(manager.report_path).parent / "style.css").read_text() == own.read_text()


def test_runs_index_lists_runs_newest_first(cold: Any) -> None:
    """reports/index.html has a row per run, newest first, with status, host and run line."""
    failed = run("failing", "rep")
    index = page(Path(cold.reports_path) / "index.html")
    rows = select(index, "table.runs tbody tr")
    assert [row.get("data-reference") for row in rows] == [
        failed.get_reference_name(),
        cold.get_reference_name(),
    ]
    assert "ERROR" in text(rows[0]) and "COMPLETE" in text(rows[1])
    assert text(select(rows[1], "td.notes")[0]) == "first line of the notes"
    assert text(select(rows[1], "td.host")[0]) == cold.hostname
    assert text(select(rows[1], "td.cli")[0]) == cold.run_line
    assert select(rows[1], "td.reference a")[0].get("href") == (
        f"{cold.get_reference_name()}/index.html"
    )


def test_runs_index_is_built_from_the_registry_only(tmp_path: Path) -> None:
    """The index reads the registry, not old reports: runs without a report are unlinked,
    report folders without a run are listed apart, and registry text is escaped."""
    reports = tmp_path / "reports"
    (reports / "stray_1_2020-01-01-T000000").mkdir(parents=True)
    (reports / "stray_1_2020-01-01-T000000" / "index.html").write_text("<html></html>")
    with RunStore(tmp_path / "data") as store:
        first = store.start_run(
            "exp", datetime(2024, 1, 1), {"hostname": "h1", "cli": "experiment exp", "notes": None}
        )
        second = store.start_run(
            "exp",
            datetime(2024, 1, 2),
            {
                "hostname": SCRIPT,
                "cli": "experiment exp -p x",
                "notes": f"{SCRIPT}\nmore",
                "workdir_dirty": True,
                "commit": "a" * 40,
            },
        )
        store.update_run(second["reference"], status="error", error=f"Boom - {IMG_ATTACK}")
    (reports / first["reference"]).mkdir()
    (reports / first["reference"] / "index.html").write_text("<html></html>")
    doc = page(update_report_index(str(reports), str(tmp_path / "data")))
    rows = select(doc, "table.runs tbody tr")
    assert [row.get("data-reference") for row in rows] == [second["reference"], first["reference"]]
    newest, oldest = rows
    assert select(newest, "td.reference a") == []
    assert "(no report)" in text(newest)
    assert select(newest, ".dirty")[0].text_content() == "*"
    assert text(select(newest, "td.commit code")[0]) == "a" * 10
    assert text(select(newest, "td.notes")[0]) == SCRIPT
    assert text(select(newest, "td.host")[0]) == SCRIPT
    assert IMG_ATTACK in text(newest)
    assert select(doc, "script") == [] and select(doc, "td img") == []
    assert select(oldest, "td.reference a")[0].get("href") == f"{first['reference']}/index.html"
    assert [a.get("href") for a in select(doc, "ul.unregistered a")] == [
        "stray_1_2020-01-01-T000000/index.html"
    ]


def test_runs_index_orders_runs_of_the_same_second_by_registration(tmp_path: Path) -> None:
    """Runs started in the same second are listed in reverse registration order."""
    with RunStore(tmp_path / "data") as store:
        references = [
            store.start_run(name, datetime(2024, 1, 1), {"cli": name})["reference"]
            for name in ("zeta", "alpha", "mid")
        ]
    doc = page(update_report_index(str(tmp_path / "reports"), str(tmp_path / "data")))
    rows = select(doc, "table.runs tbody tr")
    assert [row.get("data-reference") for row in rows] == references[::-1]


def test_live_manager_report_uses_the_executed_records(rep: Any) -> None:
    """A notebook-style manager (no plan) reports the stages as they ran."""
    from experiments.rep import add_up, make_numbers  # type: ignore[import-not-found]
    from params.rep import Params  # type: ignore[import-not-found]

    manager = cf.ArtifactManager("live", status_override="LIVE")
    add_up(make_numbers(cf.Record(manager, Params(name="live"))))
    make_numbers(cf.Record(manager, Params(name="live")))
    doc = page(render_run_report(manager))
    assert text(info(doc)["Status"]).startswith("LIVE")
    assert "No stage plan was kept" in text(doc.get_element_by_id("map"))
    assert node_states(doc) == {"c0_0": "computed", "c0_1": "computed", "c1_0": "loaded"}


# ---------------------------------------------------------------------- serving


def test_report_server_serves_the_reports_folder(cold: Any) -> None:
    """make_report_server serves reports/ over HTTP on localhost."""
    server = make_report_server(str(cold.reports_path), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://{host}:{port}/_latest/index.html") as response:
            assert response.status == 200
            assert cold.get_reference_name() in response.read().decode("utf-8")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_serve_reports_binds_localhost_by_default() -> None:
    """serve_reports listens on 127.0.0.1:8080 unless told otherwise."""
    import inspect

    defaults = inspect.signature(serve_reports).parameters
    assert defaults["host"].default == "127.0.0.1"
    assert defaults["port"].default == 8080


def test_report_server_refuses_a_missing_folder(tmp_path: Path) -> None:
    """Serving a folder that does not exist fails with a message saying what to do."""
    with pytest.raises(FileNotFoundError, match="run an experiment first"):
        make_report_server(str(tmp_path / "nope"))
