"""Tests of Jupyter support: the display functions, record HTML, the experiment notebook, and a
real notebook executed through a real Jupyter kernel."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from _projects import TINY_EXPERIMENT, TINY_PARAMS, calls
from matplotlib.figure import Figure

import curifactory_like as cf
from curifactory_like import notebook
from curifactory_like.caching import PickleCacher
from curifactory_like.experiment import run_experiment
from curifactory_like.reporting import DFReporter, FigureReporter, JsonReporter

SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_PNG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@dataclass
class Params(cf.ExperimentParameters):
    n: int = 0


@cf.stage(outputs=["table"])
def make_table(record):
    df = pd.DataFrame({"count": [3, 12], "label": [SCRIPT, "plain"]})
    record.report(DFReporter(df, name="table"))
    return df


@cf.stage(inputs=["table"], outputs=["total"])
def plot_table(record, table):
    fig = Figure()
    fig.add_subplot().plot(table["count"])
    record.report(FigureReporter(fig, name="plot", group="figures"))
    return int(table["count"].sum())


@cf.stage(outputs=["info"])
def describe(record):
    record.report(JsonReporter({"name": record.params.name}, name=SCRIPT))
    return {"name": record.params.name}


@cf.stage(outputs=["cached_table"], cachers=[PickleCacher])
def make_cached_table(record):
    df = pd.DataFrame({"count": [3, 12]})
    record.report(DFReporter(df, name="table"))
    return df


P_CACHED = cf.ExperimentParameters(name="c")


def live_manager(**kwargs) -> cf.ArtifactManager:
    """A live (notebook-style) manager that writes nothing."""
    return cf.ArtifactManager("live", dry=True, suppress_live_log=True, **kwargs)


def run_two_records(manager: cf.ArtifactManager) -> tuple[cf.Record, cf.Record]:
    first = cf.Record(manager, Params(name="first", n=1))
    second = cf.Record(manager, Params(name=SCRIPT, n=2))
    plot_table(make_table(first))
    describe(second)
    return first, second


def html_of(display) -> str:
    from IPython.display import HTML

    assert isinstance(display, HTML)
    return display.data


def png_images(markup: str) -> list[bytes]:
    return [base64.b64decode(payload) for payload in DATA_PNG.findall(markup)]


# -- display functions -------------------------------------------------------------------------


def test_display_info_shows_run_identity_and_live_status(project):
    """display_info shows the reference, the LIVE status and the live parameter sets."""
    manager = live_manager()
    first, _ = run_two_records(manager)
    markup = html_of(notebook.display_info(manager))
    assert manager.get_reference_name() in markup
    assert "LIVE" in markup
    assert f"first - <code>{first.params.hash}</code>" in markup


def test_display_info_escapes_hostile_text(project):
    """Notes and parameter-set names with HTML in them show as text."""
    manager = live_manager(notes=SCRIPT)
    run_two_records(manager)
    markup = html_of(notebook.display_info(manager))
    assert SCRIPT not in markup
    assert markup.count(ESCAPED_SCRIPT) == 2  # the notes and the parameter set


def test_display_info_lists_parameter_files_with_hashes(project):
    """The parameter files of an experiment run are listed with their sets' hashes."""
    project.params("tiny", TINY_PARAMS)
    project.experiment("tiny", TINY_EXPERIMENT)
    _, manager = run_experiment("tiny", ["tiny"], param_set_names=["a", "b"])
    markup = html_of(notebook.display_info(manager))
    assert "COMPLETE" in markup
    for name, hash_ in manager.param_file_param_sets["tiny"]:
        assert f"{name} - <code>{hash_}</code>" in markup


def test_display_all_reportables_embeds_table_and_figure(project):
    """Every reportable is shown: the table with escaped cells and the figure as a PNG data URI."""
    manager = live_manager()
    run_two_records(manager)
    markup = html_of(notebook.display_all_reportables(manager))
    assert "<table" in markup and "<pre>12</pre>" in markup
    assert SCRIPT not in markup and ESCAPED_SCRIPT in markup
    images = png_images(markup)
    assert len(images) == 1 and images[0].startswith(PNG_SIGNATURE)
    assert '<h3 class="reportable-group-title">figures</h3>' in markup
    for reportable in manager.reportables:
        assert f'id="{reportable.qualified_name}"' in markup.replace(ESCAPED_SCRIPT, SCRIPT)


def test_display_all_reportables_without_reportables_says_so(project):
    """A run without reportables shows a note rather than nothing."""
    markup = html_of(notebook.display_all_reportables(live_manager()))
    assert "No reportables yet." in markup


def test_display_record_reportables_shows_only_that_record(project):
    """Only the reportables reported on the given record are shown."""
    manager = live_manager()
    first, second = run_two_records(manager)
    first_markup = html_of(notebook.display_record_reportables(manager, first))
    second_markup = html_of(notebook.display_record_reportables(manager, second))
    assert "first_make_table_table" in first_markup and "first_plot_table_plot" in first_markup
    assert "describe" not in first_markup
    assert "_describe_" in second_markup and "make_table" not in second_markup


def test_display_group_reportables_shows_only_the_group(project):
    """Only the group's reportables are shown, under the group's name."""
    manager = live_manager()
    run_two_records(manager)
    markup = html_of(notebook.display_group_reportables(manager, "figures"))
    assert "figures</h3>" in markup and "first_plot_table_plot" in markup
    assert "make_table" not in markup and len(png_images(markup)) == 1


def test_display_stage_reportables_shows_only_the_stage(project):
    """Only the reportables reported by the named stage are shown."""
    manager = live_manager()
    run_two_records(manager)
    markup = html_of(notebook.display_stage_reportables(manager, "make_table"))
    assert "first_make_table_table" in markup and "<table" in markup
    assert "plot_table" not in markup


def test_display_reportable_restores_the_reportable_path(project):
    """Displaying one reportable shows it and leaves its path as it was."""
    manager = live_manager()
    run_two_records(manager)
    figure = next(r for r in manager.reportables if isinstance(r, FigureReporter))
    figure.path = "before"
    markup = html_of(notebook.display_reportable(manager, figure))
    assert figure.path == "before"
    assert png_images(markup)[0].startswith(PNG_SIGNATURE)
    assert "__curifactory_like_reportable_path__" not in markup


def test_display_reportable_of_a_cached_stage(project):
    """Reportables restored from the cache when a stage loads are displayed like fresh ones."""
    make_cached_table(cf.Record(cf.ArtifactManager("cached", suppress_live_log=True), P_CACHED))
    again = cf.ArtifactManager("cached", suppress_live_log=True)
    make_cached_table(cf.Record(again, P_CACHED))
    assert again.artifacts[0].action == "loaded"
    markup = html_of(notebook.display_all_reportables(again))
    assert "c_make_cached_table_table" in markup and "<pre>12</pre>" in markup


def test_display_stage_graph_draws_records_stages_and_artifacts(project):
    """The stage graph is an SVG naming every record, stage and artifact, labels escaped."""
    manager = live_manager()
    run_two_records(manager)
    markup = html_of(notebook.display_stage_graph(manager))
    assert markup.count("<svg") == 1
    for text in ("make_table", "plot_table", "describe", "table", "total", "info"):
        assert f">{text}</text>" in markup
    assert "Record 0: first" in markup
    assert SCRIPT not in markup and ESCAPED_SCRIPT in markup
    assert "computed" in markup  # the legend


def test_display_stage_graph_links_stages_through_artifacts(project):
    """An artifact a later stage reads is drawn with an edge into that stage."""
    manager = live_manager()
    run_two_records(manager)
    markup = html_of(notebook.display_stage_graph(manager))
    assert "<title>r0_s0&#45;&gt;a0</title>" in markup
    assert "<title>a0&#45;&gt;r0_s1</title>" in markup


def test_display_stage_graph_without_dot_shows_a_note(project, monkeypatch, tmp_path):
    """Without graphviz's dot program the graph is replaced by a note saying how to fix it."""
    manager = live_manager()
    run_two_records(manager)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    markup = html_of(notebook.display_stage_graph(manager))
    assert "<svg" not in markup
    assert "dot program of Graphviz" in markup and "apt-get install graphviz" in markup


def test_display_stage_graph_before_any_stage(project):
    """A manager whose records ran no stage shows a note instead of an empty graph."""
    markup = html_of(notebook.display_stage_graph(live_manager()))
    assert "No stages have run yet." in markup


# -- record_html ---------------------------------------------------------------------------------


def test_record_html_lists_params_stages_and_artifact_previews(project):
    """A record's HTML holds its parameter set, hash, stages and artifact previews."""
    manager = live_manager()
    first, _ = run_two_records(manager)
    markup = notebook.record_html(first)
    assert "Record 0 (first)" in markup and first.params.hash in markup
    assert "make_table → plot_table" in markup
    assert "<b>table</b>" in markup and "<b>total</b>" in markup
    assert "(int) 15" in markup and "computed" in markup
    assert first._repr_html_() == markup


def test_record_html_escapes_hostile_names(project):
    """A parameter-set name with HTML in it shows as text."""
    manager = live_manager()
    _, second = run_two_records(manager)
    markup = notebook.record_html(second)
    assert SCRIPT not in markup and ESCAPED_SCRIPT in markup


def test_importing_the_module_imports_neither_ipython_nor_graphviz():
    """IPython and graphviz are imported by the display functions only, not at import."""
    code = (
        "import sys, curifactory_like.notebook; "
        "print([m for m in ('IPython', 'graphviz') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# -- write_experiment_notebook -----------------------------------------------------------------


def tiny_run(project, **kwargs):
    project.params("tiny", TINY_PARAMS)
    project.experiment("tiny", TINY_EXPERIMENT)
    _, manager = run_experiment("tiny", ["tiny"], **kwargs)
    assert manager.status == "complete"
    return manager


def exec_script(path: Path) -> dict:
    """Run the notebook's script as the converted curifactory tests do (only %cd removed)."""
    code = path.read_text(encoding="utf-8").replace("%cd ../..", "")
    script_locals: dict = {}
    exec(code, {"__name__": "notebook_script"}, script_locals)
    return script_locals


def test_experiment_notebook_is_valid_nbformat_4(project):
    """The written .ipynb validates against the nbformat 4 schema."""
    nbformat = pytest.importorskip("nbformat")
    manager = tiny_run(project, param_set_names=["a", "b"])
    path = notebook.write_experiment_notebook(manager, "notebooks/experiments/run")
    assert path == "notebooks/experiments/run.ipynb"
    assert not Path("notebooks/experiments/run.py").exists()
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3"
    assert nb.cells[0].cell_type == "markdown"
    assert any(cell.source == "%cd ../.." for cell in nb.cells)


def test_experiment_notebook_script_reproduces_records_from_cache(project):
    """The script reruns the experiment dry: same records and states, no stage computed."""
    manager = tiny_run(project, param_set_names=["a", "c"])
    before = calls(project.root)
    notebook.write_experiment_notebook(manager, "notebooks/experiments/run", leave_script=True)
    found = exec_script(Path("notebooks/experiments/run.py"))
    assert calls(project.root) == before
    assert found["manager"].dry and found["manager"].cache_path == manager.cache_path
    assert len(found["manager"].records) == 2
    assert [found["record_0"].params.name, found["record_1"].params.name] == ["a", "c"]
    assert found["record_0"].params.hash == manager.records[0].params.hash
    assert (found["state_0"]["z"], found["state_1"]["z"]) == (4, 36)
    assert found["state_0"]["x"] == 1  # a skipped stage's output loads when read
    assert found["experiment_module"].__name__ == "experiments.tiny"


def test_experiment_notebook_cells_match_the_script(project):
    """The notebook holds the same code as the script, one cell per record binding."""
    manager = tiny_run(project, param_set_names=["a", "b"])
    notebook.write_experiment_notebook(manager, "nb/run", leave_script=True)
    cells = json.loads(Path("nb/run.ipynb").read_text(encoding="utf-8"))["cells"]
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    script = Path("nb/run.py").read_text(encoding="utf-8")
    for source in code:
        assert source in script
    assert sum("record_0 = manager.records[0]" in source for source in code) == 1
    assert sum("state_1 = record_1.state" in source for source in code) == 1


def test_experiment_notebook_leaves_dag_mode_off(project):
    """After the script's rerun, a new stage called on a record runs."""

    @cf.stage(inputs=["z"], outputs=["plus"])
    def add_three(record, z):
        return z + 3

    manager = tiny_run(project, param_set_names=["b"])
    notebook.write_experiment_notebook(manager, "nb/run", leave_script=True)
    found = exec_script(Path("nb/run.py"))
    add_three(found["record_0"])
    assert found["state_0"]["plus"] == 19


def test_experiment_notebook_of_store_full_run_reads_the_run_folder(project):
    """A --store-full run's notebook loads from the run's own artifacts, not the project cache."""
    manager = tiny_run(project, param_set_names=["b"], store_full=True)
    notebook.write_experiment_notebook(manager, "nb/run", leave_script=True)
    script = Path("nb/run.py").read_text(encoding="utf-8")
    assert "project-wide cache" not in script
    shutil.rmtree(project.cache)  # the project-wide cache is gone: only the run folder remains
    before = calls(project.root)
    found = exec_script(Path("nb/run.py"))
    assert found["manager"].cache_path == str(Path(manager.get_run_output_path()) / "artifacts")
    assert found["state_0"]["z"] == 16
    assert calls(project.root) == before


def test_experiment_notebook_warnings(project):
    """The project-cache warning and the error warning appear when they apply."""
    manager = tiny_run(project, param_set_names=["a"])
    notebook.write_experiment_notebook(manager, "nb/plain", suppress_global_warning=True)
    notebook.write_experiment_notebook(manager, "nb/failed", errored=True)
    plain = Path("nb/plain.ipynb").read_text(encoding="utf-8")
    failed = Path("nb/failed.ipynb").read_text(encoding="utf-8")
    assert "project-wide cache" not in plain and "did not complete" not in plain
    assert "project-wide cache" in failed and "did not complete" in failed


def test_experiment_notebook_directory_change_back_depth(project):
    """The %cd cell climbs as many folders as asked."""
    manager = tiny_run(project, param_set_names=["a"])
    notebook.write_experiment_notebook(manager, "nb/run", directory_change_back_depth=3)
    cells = json.loads(Path("nb/run.ipynb").read_text(encoding="utf-8"))["cells"]
    assert any(cell["source"] == ["%cd ../../.."] for cell in cells)


def test_experiment_notebook_with_hostile_parameter_set_name(project):
    """A parameter-set name with quotes, a newline and HTML stays data: escaped in markdown,
    a string literal in code, and the script still reproduces the record."""
    hostile = "x\"'\n" + SCRIPT
    project.params(
        "hostile",
        f"""
        import curifactory_like as cf

        def get_params():
            return [cf.ExperimentParameters(name={hostile!r})]
        """,
    )
    project.experiment(
        "echo",
        """
        import curifactory_like as cf
        from curifactory_like.caching import JsonCacher

        @cf.stage(outputs=["name"], cachers=[JsonCacher])
        def echo(record):
            return record.params.name

        def run(param_sets, manager):
            for param_set in param_sets:
                echo(cf.Record(manager, param_set))
        """,
    )
    _, manager = run_experiment("echo", ["hostile"])
    notebook.write_experiment_notebook(manager, "nb/run", leave_script=True)
    markdown = json.loads(Path("nb/run.ipynb").read_text(encoding="utf-8"))["cells"][0]
    assert SCRIPT not in "".join(markdown["source"])
    found = exec_script(Path("nb/run.py"))
    assert found["state_0"]["name"] == hostile


# -- a real notebook through a real kernel -----------------------------------------------------

LIVE_NOTEBOOK_CELLS = [
    """
    import curifactory_like as cf
    import pandas as pd
    from IPython.display import HTML
    from matplotlib.figure import Figure

    from curifactory_like import notebook
    from curifactory_like.reporting import DFReporter, FigureReporter

    manager = cf.ArtifactManager("live_notebook")
    """,
    """
    @cf.stage(outputs=["table"])
    def make_table(record):
        df = pd.DataFrame({"count": [3, 12], "label": ["<b>bold</b>", "plain"]})
        record.report(DFReporter(df, name="table"))
        return df

    @cf.stage(inputs=["table"], outputs=["total"])
    def plot_table(record, table):
        fig = Figure()
        fig.add_subplot().plot(table["count"])
        record.report(FigureReporter(fig, name="plot", group="figures"))
        return int(table["count"].sum())

    record = cf.Record(manager, cf.ExperimentParameters(name="p0"))
    plot_table(make_table(record))
    record.state["total"]
    """,
    "notebook.display_info(manager)",
    "notebook.display_all_reportables(manager)",
    "notebook.display_record_reportables(manager, record)",
    'notebook.display_group_reportables(manager, "figures")',
    'notebook.display_stage_reportables(manager, "make_table")',
    "notebook.display_reportable(manager, manager.reportables[0])",
    "notebook.display_stage_graph(manager)",
    "HTML(notebook.record_html(record))",
]


def test_live_notebook_through_a_real_kernel(tmp_path):
    """A notebook run by a real Jupyter kernel runs stages live and its display cells output
    the rendered reportables: the table, the figure as an embedded PNG, and the SVG graph."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(textwrap.dedent(src).strip()) for src in LIVE_NOTEBOOK_CELLS
    ]
    client = nbclient.NotebookClient(
        nb,
        timeout=60,
        startup_timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError if any cell fails

    def result_html(index: int) -> str:
        results = [o for o in nb.cells[index].outputs if o.output_type == "execute_result"]
        assert len(results) == 1, nb.cells[index].outputs
        return results[0].data["text/html"]

    stage_results = [o for o in nb.cells[1].outputs if o.output_type == "execute_result"]
    assert stage_results[0].data["text/plain"] == "15"
    info, everything, of_record, of_group, of_stage, single, graph, record = (
        result_html(i) for i in range(2, 10)
    )
    assert "LIVE" in info and "(interactive session)" in info
    for markup in (everything, of_record):
        assert "<table" in markup and "<pre>12</pre>" in markup
        assert "&lt;b&gt;bold&lt;/b&gt;" in markup and "<b>bold</b>" not in markup
        assert png_images(markup)[0].startswith(PNG_SIGNATURE)
    assert png_images(of_group)[0].startswith(PNG_SIGNATURE) and "<table" not in of_group
    assert "<table" in of_stage and not png_images(of_stage)
    assert "p0_make_table_table" in single
    assert "<svg" in graph and ">plot_table</text>" in graph
    assert "Record 0 (p0)" in record and "(int) 15" in record
    assert (tmp_path / "data" / "cache").is_dir()  # the live manager ran in the notebook's folder


REPORTING_EXPERIMENT = '''\
"""One cached stage that reports a table."""

import pandas as pd

import curifactory_like as cf
from curifactory_like.caching import PickleCacher
from curifactory_like.reporting import DFReporter


@cf.stage(outputs=["table"], cachers=[PickleCacher])
def make_table(record):
    df = pd.DataFrame({"n": [record.params.n, 7]})
    record.report(DFReporter(df, name="table"))
    return df


def run(param_sets, manager):
    for param_set in param_sets:
        make_table(cf.Record(manager, param_set))
'''


def test_experiment_notebook_runs_in_a_real_kernel(project):
    """The written notebook, run by a real kernel from its own folder, reloads the records and
    shows them and the cached reportables."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    project.params("tiny", TINY_PARAMS)
    project.experiment("reporting", REPORTING_EXPERIMENT)
    _, manager = run_experiment("reporting", ["tiny"], param_set_names=["b"])
    path = Path(notebook.write_experiment_notebook(manager, "notebooks/experiments/run"))

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=60,
        startup_timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    client.execute()

    html = [
        output.data["text/html"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "execute_result" and "text/html" in output.data
    ]
    record, reportables, graph = html[-3:]
    assert "Record 0 (b)" in record and "<b>table</b>" in record and "loaded" in record
    assert "b_make_table_table" in reportables and "<pre>7</pre>" in reportables
    assert "<svg" in graph
