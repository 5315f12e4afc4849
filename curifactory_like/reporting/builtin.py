"""The built-in reportables, with curifactory's names, arguments and attributes.

- ``HTMLReporter``: a string of trusted HTML, shown unescaped.
- ``JsonReporter``: indented JSON in ``<pre>``.
- ``DFReporter``: a pandas DataFrame as a table.
- ``LatexTableReporter``: a DataFrame's LaTeX source in ``<pre>``.
- ``FigureReporter``: a matplotlib figure; ``render()`` writes ``<qualified_name>.<format>``.
- ``LinePlotReporter``: line plot(s) of lists, arrays or dicts of them; ``render()`` writes
  ``<qualified_name>.<format>``.
- ``ImageReporter``: an existing image file; ``render()`` writes ``<qualified_name><extension>``.

Everything except ``HTMLReporter`` escapes what it shows. matplotlib and numpy are imported
inside the methods that need them, so importing this module stays cheap.

Rebuilt from a stage's cache (``curifactory_like.reporting.persistence``), each keeps its class;
the figure kinds then hold their rendered image in ``image_data`` instead of a figure or the
plotted values, and ``LatexTableReporter`` its text in ``latex_text`` instead of the frame.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from curifactory_like.reporting.reportable import Reportable, render_template, template_environment

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "DFReporter",
    "FigureReporter",
    "HTMLReporter",
    "ImageReporter",
    "JsonReporter",
    "LatexTableReporter",
    "LinePlotReporter",
]


class HTMLReporter(Reportable):
    """Adds a string of raw HTML to the report, as is (it is trusted, not escaped).

    Args:
        html_string: The HTML, or a list of HTML strings that are concatenated.
        name: See ``Reportable``.
        group: See ``Reportable``.
    """

    def __init__(
        self, html_string: str | list[str], name: str | None = None, group: str | None = None
    ) -> None:
        self.html_string = html_string
        """The raw HTML to include."""
        super().__init__(name=name, group=group)

    def html(self) -> str:
        if isinstance(self.html_string, str):
            return self.html_string
        return "".join(self.html_string)


class JsonReporter(Reportable):
    """Adds an indented JSON dump of a value (usually a dict) in a ``<pre>`` block.

    Args:
        dictionary: Anything JSON-serialisable; other objects are shown with ``str()``.
        name: See ``Reportable``.
        group: See ``Reportable``.
    """

    def __init__(self, dictionary: Any, name: str | None = None, group: str | None = None) -> None:
        self.data = dictionary
        """The value to dump."""
        super().__init__(name=name, group=group)

    def html(self) -> str:
        text = json.dumps(self.data, indent=4, default=str)
        return render_template("reportables/preformatted.html", text=text)


class DFReporter(Reportable):
    """Adds a pandas DataFrame to the report as an HTML table.

    Float cells are shown with ``float_prec`` decimals; integer, string and other cells as they
    are (an integer column stays integer even next to float columns).

    Args:
        df: The DataFrame to show.
        name: See ``Reportable``.
        group: See ``Reportable``.
        float_prec: Number of decimals for floating point cells.

    Note:
        To use pandas' stylers, pass ``df.style....to_html()`` to an ``HTMLReporter`` instead.
    """

    def __init__(
        self,
        df: pd.DataFrame,
        name: str | None = None,
        group: str | None = None,
        float_prec: int = 4,
    ) -> None:
        self._df: pd.DataFrame | None = df
        self._read_df: Callable[[], pd.DataFrame] | None = None
        self._stored_table: tuple[int, str] | None = None
        self.float_prec = float_prec
        """Number of decimals for floating point cells."""
        super().__init__(name=name, group=group)

    @property
    def df(self) -> pd.DataFrame:
        """The DataFrame to show (one rebuilt from a cached stage is read on first use)."""
        if self._read_df is not None:
            self._df, self._read_df = self._read_df(), None
        return self._df  # type: ignore[return-value]

    @df.setter
    def df(self, df: pd.DataFrame) -> None:
        self._df, self._read_df, self._stored_table = df, None, None

    @classmethod
    def _from_storage(
        cls,
        read_df: Callable[[], pd.DataFrame],
        table_html: str,
        name: str | None,
        group: str | None,
        float_prec: int,
    ) -> DFReporter:
        """A reporter rebuilt from a cached stage: ``html()`` is the table stored with it (for
        this ``float_prec``), and the frame is read by ``read_df`` only if ``df`` is used."""
        reporter = cls(None, name=name, group=group, float_prec=float_prec)  # type: ignore[arg-type]
        reporter._read_df = read_df
        reporter.keep_table(table_html)
        return reporter

    def keep_table(self, table_html: str) -> None:
        """Show ``table_html`` (this frame's table at the current ``float_prec``) instead of
        formatting the frame again, until ``df`` or ``float_prec`` changes."""
        self._stored_table = (self.float_prec, table_html)

    def _format(self, value: Any) -> str:
        import numpy as np

        if isinstance(value, (float, np.floating)):
            return f"{value:.{self.float_prec}f}"
        return str(value)

    def html(self) -> str:
        if self._stored_table is not None and self._stored_table[0] == self.float_prec:
            return self._stored_table[1]
        df = self.df
        # Column by column, so each value keeps its column's dtype (iterrows() would upcast
        # a row mixing ints and floats to floats).
        columns = [[self._format(v) for v in df.iloc[:, j]] for j in range(df.shape[1])]
        labels = [self._format(label) for label in df.index]
        rows = [(label, [column[i] for column in columns]) for i, label in enumerate(labels)]
        index_name = "" if df.index.name is None else str(df.index.name)
        return render_template(
            "reportables/dataframe.html",
            index_name=index_name,
            columns=[str(column) for column in df.columns],
            rows=rows,
        )


_REFERENCE_START = re.compile(r"&(?=[#A-Za-z0-9])")


def _escape_keeping_bare_ampersands(text: str) -> str:
    """Escape ``text`` for HTML, except a ``&`` that cannot start a character reference.

    LaTeX's column separator ``" & "`` stays as it is (curifactory's ``html()`` output), while
    ``<``, ``>`` and anything that looks like ``&lt;`` still show as text.
    """
    text = _REFERENCE_START.sub("&amp;", text)
    return text.replace("<", "&lt;").replace(">", "&gt;")


class LatexTableReporter(Reportable):
    """Adds the LaTeX source of a DataFrame table in a ``<pre>`` block, to copy into a paper.

    Args:
        df: The DataFrame to convert (``None`` only when rebuilt from the cache, with
            ``latex_text`` set).
        name: See ``Reportable``.
        group: See ``Reportable``.
        kwargs: Passed to ``df.style.to_latex()``.
    """

    def __init__(
        self,
        df: pd.DataFrame | None,
        name: str | None = None,
        group: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.df = df
        self.kwargs = kwargs
        """Keyword arguments for ``pandas.io.formats.style.Styler.to_latex``."""
        self.latex_text: str | None = None
        """The LaTeX source, when rebuilt from the cache (``df`` is then ``None``)."""
        super().__init__(name=name, group=group)

    def latex(self) -> str:
        """Return the LaTeX source of the table."""
        if self.df is None:
            return self.latex_text or ""
        return str(self.df.style.to_latex(**self.kwargs))

    def html(self) -> list[str]:
        # curifactory's shape: the <pre> opening, the text, the closing, as a list.
        pre = template_environment().get_template("reportables/preformatted.html").module
        return [
            str(pre.open()),  # type: ignore[attr-defined]
            _escape_keeping_bare_ampersands(self.latex()),
            str(pre.close()),  # type: ignore[attr-defined]
        ]


def _save_figure(fig: Figure, output_path: str, savefig_kwargs: Mapping[str, Any]) -> None:
    """Save ``fig`` without touching any GUI backend.

    Raster formats are drawn by the Agg backend (``savefig(backend="agg")``), vector formats by
    their own backend (svg, pdf, ps), so no display is needed. The global matplotlib backend is
    left alone: switching it with ``matplotlib.use`` would break an interactive session.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    kwargs = dict(savefig_kwargs)
    kwargs.setdefault("format", "png")
    if "backend" not in kwargs and hasattr(FigureCanvasAgg, f"print_{kwargs['format']}"):
        kwargs["backend"] = "agg"
    fig.savefig(output_path, **kwargs)


def _close_figure(fig: Figure) -> None:
    """Drop ``fig`` from pyplot's figure registry, if pyplot is in use at all."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


class FigureReporter(Reportable):
    """Adds a matplotlib figure to the report.

    The figure is saved during ``render()`` (so changes made to it after reporting still show)
    and then closed, so pyplot does not keep every reported figure alive.

    Once the reportable has been rendered into its stage's cache (when the stage finishes),
    ``image_data`` holds the saved image and later renders write those bytes instead of drawing
    the figure again.

    Args:
        fig: The matplotlib figure (``None`` only when rebuilt from the cache, with
            ``image_data`` set).
        name: See ``Reportable``.
        group: See ``Reportable``.
        kwargs: Passed to ``fig.savefig()``; ``format`` defaults to ``"png"``.
    """

    def __init__(
        self, fig: Figure | None, name: str | None = None, group: str | None = None, **kwargs: Any
    ) -> None:
        self.kwargs = kwargs
        """Keyword arguments for ``fig.savefig()``."""
        self.fig = fig
        """The figure to save."""
        self.image_data: bytes | None = None
        """The saved image; when set, ``render()`` writes it instead of saving ``fig``."""
        super().__init__(name=name, group=group)

    @property
    def _extension(self) -> str:
        return "." + self.kwargs.get("format", "png")

    def render(self) -> None:
        output_path = self._output_path(self._extension)
        if self.image_data is not None:
            _write_bytes(output_path, self.image_data)
            return
        if self.fig is None:
            raise ValueError(
                f"FigureReporter {self.qualified_name!r} has neither a figure nor image_data; "
                "pass the matplotlib figure to show"
            )
        _save_figure(self.fig, output_path, self.kwargs)
        _close_figure(self.fig)

    def html(self) -> str:
        src = self._display_src(self._extension)
        return render_template("reportables/image.html", src=src, alt=self._file_name(""))

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickling a figure that was open in pyplot re-registers it with pyplot (matplotlib's
        # ``_restore_to_pylab``); a cached reportable must not reopen its figure.
        self.__dict__.update(state)
        self.__dict__.setdefault("image_data", None)
        fig = state.get("fig")
        if fig is not None:
            _close_figure(fig)


class LinePlotReporter(Reportable):
    """Plots one or several lines with matplotlib and adds the plot to the report.

    ``y`` is a list / numpy array (one line) or a dict of them (one line per key, keys in the
    legend). ``x`` is optional; with a dict ``y`` it is a dict with the same keys, or a single
    sequence shared by every line.

    Args:
        y: The y values: a sequence, or a dict of sequences.
        x: The x values, matching ``y``; ``None`` plots against the position.
        name: See ``Reportable``.
        group: See ``Reportable``.
        plot_kwargs: Keyword arguments for every ``Axes.plot()`` call.
        savefig_kwargs: Keyword arguments for ``Figure.savefig()``; ``format`` defaults to png.

    Example:
        .. code-block:: python

            record.report(LinePlotReporter(
                y={"train loss": train_loss, "test loss": test_loss}, name="history"))
    """

    def __init__(
        self,
        y: Any,
        x: Any = None,
        name: str | None = None,
        group: str | None = None,
        plot_kwargs: dict[str, Any] | None = None,
        savefig_kwargs: dict[str, Any] | None = None,
    ) -> None:
        _check_line_data(y, x)
        self.y = y
        self.x = x
        self.plot_kwargs: dict[str, Any] = dict(plot_kwargs or {})
        """Keyword arguments for every ``Axes.plot()`` call."""
        self.savefig_kwargs: dict[str, Any] = dict(savefig_kwargs or {})
        """Keyword arguments for ``Figure.savefig()``."""
        self.image_data: bytes | None = None
        """The saved plot; when set, ``render()`` writes it instead of plotting again (set
        once the plot is rendered into the stage's cache, or when rebuilt from it)."""
        super().__init__(name=name, group=group)

    @property
    def _extension(self) -> str:
        return "." + self.savefig_kwargs.get("format", "png")

    def render(self) -> None:
        if self.image_data is not None:
            _write_bytes(self._output_path(self._extension), self.image_data)
            return
        # A bare Figure, not pyplot: nothing is registered globally, so nothing can leak and
        # no GUI backend is involved.
        from matplotlib.figure import Figure

        fig = Figure(facecolor="white")
        ax = fig.add_subplot()
        if isinstance(self.y, Mapping):
            for key, ys in self.y.items():
                xs = self.x[key] if isinstance(self.x, Mapping) else self.x
                _plot(ax, xs, ys, {**self.plot_kwargs, "label": str(key)})
            ax.legend()
        else:
            _plot(ax, self.x, self.y, self.plot_kwargs)
        ax.grid(True)
        _save_figure(fig, self._output_path(self._extension), self.savefig_kwargs)

    def html(self) -> str:
        src = self._display_src(self._extension)
        return render_template("reportables/image.html", src=src, alt=self._file_name(""))


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as outfile:
        outfile.write(data)


def _plot(ax: Any, xs: Any, ys: Any, kwargs: Mapping[str, Any]) -> None:
    if xs is None:
        ax.plot(ys, **kwargs)
    else:
        ax.plot(xs, ys, **kwargs)


def _check_line_data(y: Any, x: Any) -> None:
    """Reject ``x``/``y`` combinations LinePlotReporter cannot plot, when it is constructed."""
    if isinstance(y, Mapping):
        if isinstance(x, Mapping):
            missing = [key for key in y if key not in x]
            if missing:
                raise ValueError(
                    f"LinePlotReporter: x has no values for the y line(s) {missing!r}; give x "
                    "the same keys as y, a single sequence shared by all lines, or no x"
                )
            for key in y:
                _check_lengths(x[key], y[key], f"line {key!r}")
        elif x is not None:
            for key in y:
                _check_lengths(x, y[key], f"line {key!r}")
    elif isinstance(x, Mapping):
        raise ValueError(
            "LinePlotReporter: x is a dict but y is a single sequence; pass y as a dict with "
            "the same keys, or x as a single sequence"
        )
    elif x is not None:
        _check_lengths(x, y, "the line")


def _check_lengths(x: Any, y: Any, what: str) -> None:
    if hasattr(x, "__len__") and hasattr(y, "__len__") and len(x) != len(y):
        raise ValueError(
            f"LinePlotReporter: {what} has {len(y)} y values but {len(x)} x values; "
            "x and y must have the same length"
        )


class ImageReporter(Reportable):
    """Adds an existing image file to the report.

    The file's bytes are read when the reportable is created, so the report (and a cached copy
    of the reportable) still shows the image after the original file is deleted or overwritten.

    Args:
        image_path: Path of the image file; its extension is kept.
        name: See ``Reportable``.
        group: See ``Reportable``.

    Raises:
        FileNotFoundError: ``image_path`` does not exist.
    """

    def __init__(
        self, image_path: str | os.PathLike[str], name: str | None = None, group: str | None = None
    ) -> None:
        self.image_path = os.fspath(image_path)
        """Where the image was read from."""
        with open(self.image_path, "rb") as infile:
            self.image_data: bytes = infile.read()
            """The image file's content, captured at construction."""
        super().__init__(name=name, group=group)

    @property
    def _extension(self) -> str:
        return os.path.splitext(self.image_path)[1]

    def render(self) -> None:
        _write_bytes(self._output_path(self._extension), self.image_data)

    def html(self) -> str:
        src = self._display_src(self._extension)
        return render_template("reportables/image.html", src=src, alt=self._file_name(""))
