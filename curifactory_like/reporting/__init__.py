"""Reportables: the pieces of a run report, with curifactory's names and conventions.

``Reportable`` is the base class (subclass it, implement ``html()`` and, if it writes files,
``render()``); the built-ins cover HTML, JSON, DataFrames, LaTeX tables, matplotlib figures,
line plots and image files. ``render_reportable`` and ``prepare_report_path`` render one
reportable into a report folder; ``Reportable.inline_html()`` renders it with its images
embedded (what ``_repr_html_`` shows in Jupyter). A stage's reportables are kept with its cache
as rendered files plus data (``persistence``); a user-defined one comes back from there as a
``CachedReportable``.
"""

from curifactory_like.reporting.builtin import (
    DFReporter,
    FigureReporter,
    HTMLReporter,
    ImageReporter,
    JsonReporter,
    LatexTableReporter,
    LinePlotReporter,
)
from curifactory_like.reporting.dag_graph import (  # noqa: F401 - curifactory's private name
    _add_record_subgraph,
    map_full_svg,
    map_single_svg,
)
from curifactory_like.reporting.persistence import CachedReportable
from curifactory_like.reporting.render import prepare_report_path, render_reportable
from curifactory_like.reporting.report import (
    render_report_argset_dump,
    render_run_report,
    run_report,
)
from curifactory_like.reporting.report_index import update_report_index
from curifactory_like.reporting.reportable import Reportable
from curifactory_like.reporting.serve import serve_reports

__all__ = [
    "CachedReportable",
    "DFReporter",
    "FigureReporter",
    "HTMLReporter",
    "ImageReporter",
    "JsonReporter",
    "LatexTableReporter",
    "LinePlotReporter",
    "Reportable",
    "map_full_svg",
    "map_single_svg",
    "prepare_report_path",
    "render_report_argset_dump",
    "render_reportable",
    "render_run_report",
    "run_report",
    "serve_reports",
    "update_report_index",
]
