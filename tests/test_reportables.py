"""Tests of the reportables in curifactory_like.reporting (no manager or run needed)."""

from __future__ import annotations

import pickle

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from curifactory_like import reporting  # noqa: E402
from curifactory_like.reporting import (  # noqa: E402
    DFReporter,
    FigureReporter,
    HTMLReporter,
    ImageReporter,
    JsonReporter,
    LatexTableReporter,
    LinePlotReporter,
    Reportable,
    prepare_report_path,
    render_reportable,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCRIPT = "<script>alert(1)</script>"


def small_figure() -> Figure:
    fig = Figure()
    fig.add_subplot().plot([1, 3, 2])
    return fig


def render_into(reportable: Reportable, folder, qualified_name: str = "p0_stage_thing"):
    """Name ``reportable`` as record.report() would, and render it into ``folder``."""
    reportable.qualified_name = qualified_name
    reportable.path = str(folder)
    reportable.render()


# -- DFReporter --------------------------------------------------------------------------------


def test_df_reporter_keeps_integer_cells_integer():
    """An integer column next to a float column is shown without decimals."""
    df = pd.DataFrame({"count": [3, 12], "score": [0.5, 0.25]})
    html = DFReporter(df).html()
    assert "<pre>12</pre>" in html
    assert "12.0" not in html


def test_df_reporter_formats_floats_with_float_prec():
    """Float cells are shown with exactly float_prec decimals."""
    df = pd.DataFrame({"score": [1 / 3, 2.0]})
    html = DFReporter(df, float_prec=2).html()
    assert "<pre>0.33</pre>" in html
    assert "<pre>2.00</pre>" in html
    assert "0.333" not in html


def test_df_reporter_escapes_cells_and_column_names():
    """Cell text and column names containing markup are escaped, not injected."""
    df = pd.DataFrame({SCRIPT: [SCRIPT]})
    html = DFReporter(df).html()
    assert "<script>" not in html
    assert html.count("&lt;script&gt;") == 2


# -- JsonReporter, LatexTableReporter, HTMLReporter ------------------------------------------


def test_json_reporter_escapes_keys_and_values():
    """Markup in JSON keys and values is escaped inside the <pre> block."""
    html = JsonReporter({SCRIPT: SCRIPT}).html()
    assert "<script>" not in html
    assert "&lt;/script&gt;" in html


def test_json_reporter_output_is_indented():
    """The JSON dump is pretty-printed with a four-space indent in a <pre> block."""
    html = JsonReporter({"a": [1, 2]}).html()
    assert html.startswith("<pre>") and html.endswith("</pre>")
    assert "{\n    &#34;a&#34;: [\n        1," in html


def test_json_reporter_shows_non_json_values_as_strings():
    """Values json cannot encode are shown with str() rather than failing."""
    html = JsonReporter({"when": pd.Timestamp("2024-01-02")}).html()
    assert "2024-01-02 00:00:00" in html


def test_latex_table_reporter_html_is_curifactorys_three_item_list():
    """html() is ["<pre>", the LaTeX source, "</pre>"], the column separators left as " & "."""
    html = LatexTableReporter(pd.DataFrame({"a": [1, 2], "b": [3, 4]})).html()
    assert html[0] == "<pre>" and html[2] == "</pre>"
    assert html[1].startswith("\\begin{tabular}{lrr}")
    assert "0 & 1 & 3 \\\\" in html[1]


def test_latex_table_reporter_escapes_markup_and_references():
    """Markup and anything that could start a character reference in cells shows as text."""
    html = "".join(LatexTableReporter(pd.DataFrame({"a": [SCRIPT, "R&D &lt;"]})).html())
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "R&amp;D &amp;lt;" in html


def test_html_reporter_passes_html_through():
    """HTMLReporter's trusted HTML (string or list of strings) is returned unescaped."""
    assert HTMLReporter("<h1>hi</h1>").html() == "<h1>hi</h1>"
    assert HTMLReporter(["<h1>", "hi</h1>"]).html() == "<h1>hi</h1>"


# -- FigureReporter ----------------------------------------------------------------------------


def test_figure_reporter_renders_a_png_file(tmp_path):
    """render() writes <qualified_name>.png into path, and the file is a PNG."""
    reportable = FigureReporter(small_figure())
    render_into(reportable, tmp_path)
    output = tmp_path / "p0_stage_thing.png"
    assert output.read_bytes().startswith(PNG_SIGNATURE)


def test_figure_reporter_html_references_the_rendered_file(tmp_path):
    """html() points at the rendered file inside the display path."""
    reportable = FigureReporter(small_figure())
    render_into(reportable, tmp_path)
    reportable.path = "reportables"
    assert 'src="reportables/p0_stage_thing.png"' in reportable.html()


def test_figure_reporter_honours_savefig_format(tmp_path):
    """A format= keyword writes that format (here SVG) instead of PNG."""
    reportable = FigureReporter(small_figure(), format="svg")
    render_into(reportable, tmp_path)
    assert (tmp_path / "p0_stage_thing.svg").read_text().lstrip().startswith("<?xml")


def test_figure_reporter_closes_pyplot_figure_after_render(tmp_path):
    """A pyplot figure is closed once the reportable has saved it."""
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    reportable = FigureReporter(fig)
    render_into(reportable, tmp_path)
    assert fig.number not in plt.get_fignums()


def test_figure_reporter_unpickling_does_not_reopen_the_figure():
    """A pickled FigureReporter whose figure was open in pyplot loads without
    registering the figure with pyplot again."""
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    payload = pickle.dumps(FigureReporter(fig))
    plt.close(fig)
    before = plt.get_fignums()
    pickle.loads(payload)
    assert plt.get_fignums() == before


# -- ImageReporter -----------------------------------------------------------------------------


def test_image_reporter_survives_deleting_the_source(tmp_path):
    """The image is still rendered after the original file was deleted."""
    source = tmp_path / "source.png"
    small_figure().savefig(source)
    original = source.read_bytes()
    reportable = ImageReporter(str(source))
    source.unlink()
    out = tmp_path / "out"
    out.mkdir()
    render_into(reportable, out)
    assert (out / "p0_stage_thing.png").read_bytes() == original


def test_image_reporter_survives_pickling_after_deletion(tmp_path):
    """A pickled ImageReporter renders its image after the original is gone."""
    source = tmp_path / "source.png"
    small_figure().savefig(source)
    payload = pickle.dumps(ImageReporter(source))
    source.unlink()
    reportable = pickle.loads(payload)
    render_into(reportable, tmp_path)
    assert (tmp_path / "p0_stage_thing.png").read_bytes().startswith(PNG_SIGNATURE)


def test_image_reporter_missing_file_fails_at_construction(tmp_path):
    """A path that does not exist raises FileNotFoundError when the reportable is made."""
    with pytest.raises(FileNotFoundError):
        ImageReporter(tmp_path / "nope.png")


# -- LinePlotReporter --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "x"),
    [
        ([1.0, 2.0, 1.5], None),
        (np.array([1.0, 2.0, 1.5]), None),
        (np.array([1.0, 2.0, 1.5]), np.array([0.0, 0.5, 1.0])),
        ({"train": [1.0, 0.5], "test": np.array([1.2, 0.9])}, None),
        ({"train": [1.0, 0.5], "test": [1.2, 0.9]}, {"train": [1, 2], "test": [1, 2]}),
        ({"train": [1.0, 0.5], "test": [1.2, 0.9]}, [10, 20]),
    ],
    ids=["list", "ndarray", "ndarray-with-x", "dict", "dict-with-dict-x", "dict-with-shared-x"],
)
def test_line_plot_reporter_renders_supported_inputs(tmp_path, y, x):
    """Lists, arrays and dicts of them (with or without x) render to a PNG."""
    reportable = LinePlotReporter(y, x=x)
    render_into(reportable, tmp_path)
    assert (tmp_path / "p0_stage_thing.png").read_bytes().startswith(PNG_SIGNATURE)


def test_line_plot_reporter_rejects_x_missing_a_y_key():
    """A dict x lacking one of y's keys is rejected when the reportable is made."""
    with pytest.raises(ValueError, match="'test'"):
        LinePlotReporter({"train": [1, 2], "test": [3, 4]}, x={"train": [0, 1]})


def test_line_plot_reporter_rejects_mismatched_lengths():
    """x and y of different lengths are rejected when the reportable is made."""
    with pytest.raises(ValueError, match="same length"):
        LinePlotReporter([1, 2, 3], x=[0, 1])


def test_line_plot_reporter_leaves_no_pyplot_figure(tmp_path):
    """Rendering a line plot does not leave a figure open in pyplot."""
    before = plt.get_fignums()
    render_into(LinePlotReporter([1, 2, 3]), tmp_path)
    assert plt.get_fignums() == before


# -- Reportable base, render_reportable, prepare_report_path -----------------------------------


def test_reportable_base_requires_html():
    """The base class's html() tells the subclass author to implement it."""
    with pytest.raises(NotImplementedError, match="must implement html"):
        Reportable(name="x").html()


def test_render_reportable_puts_qualified_name_in_anchor_and_title(tmp_path):
    """The anchor (line 1) and title (line 2) of the framed HTML use the qualified name."""
    reportable = JsonReporter({"a": 1})
    reportable.qualified_name = "p0_evaluate_scores"
    lines = render_reportable(reportable, None, str(tmp_path))
    assert 'name="p0_evaluate_scores"' in lines[1]
    assert "p0_evaluate_scores" in lines[2]


def test_render_reportable_escapes_the_qualified_name(tmp_path):
    """A parameter-set name containing markup is escaped in the anchor and title."""
    reportable = JsonReporter({"a": 1})
    reportable.qualified_name = f"{SCRIPT}_evaluate_0"
    html = "".join(render_reportable(reportable, None, str(tmp_path)))
    assert "<script>" not in html


def test_render_reportable_sets_display_path_after_render(tmp_path):
    """After rendering, path is the folder as the report page sees it and rendered is set."""
    reportable = LinePlotReporter([1, 2])
    reportable.qualified_name = "p0_plot_0"
    html = "".join(render_reportable(reportable, None, str(tmp_path / "reportables")))
    assert (tmp_path / "reportables" / "p0_plot_0.png").exists()
    assert reportable.path == "reportables" and reportable.rendered
    assert 'src="reportables/p0_plot_0.png"' in html


def test_render_reportable_supports_curifactory_style_subclass(tmp_path):
    """A custom subclass written against curifactory's documented conventions renders."""

    class MyFigure(Reportable):
        def __init__(self, fig, name=None, group=None):
            self.fig = fig
            super().__init__(name=name, group=group)

        def render(self):
            self.fig.savefig(f"{self.path}/{self.qualified_name}.png")

        def html(self):
            return [f"<img src='{self.path}/{self.qualified_name}.png'>"]

    reportable = MyFigure(small_figure(), name="mine")
    reportable.qualified_name = "p0_stage_mine"
    lines = render_reportable(reportable, None, str(tmp_path))
    assert (tmp_path / "p0_stage_mine.png").exists()
    assert "<img src='reportables/p0_stage_mine.png'>" in lines


def test_prepare_report_path_empties_reportables_folder(tmp_path):
    """Preparing an existing report folder recreates empty graphs/ and reportables/ folders."""
    folder, graphs, reportables = prepare_report_path(str(tmp_path), "run_1")
    (tmp_path / "run_1" / "reportables" / "old.png").write_bytes(b"x")
    assert prepare_report_path(str(tmp_path), "run_1") == (folder, graphs, reportables)
    assert list((tmp_path / "run_1" / "reportables").iterdir()) == []
    assert (tmp_path / "run_1" / "graphs").is_dir()


def test_reporting_all_lists_the_public_names():
    """reporting.__all__ names exactly the public names the package exports."""
    import types

    public = {
        name
        for name, value in vars(reporting).items()
        if not name.startswith("_")
        and name != "annotations"
        and not isinstance(value, types.ModuleType)
    }
    assert set(reporting.__all__) == public
