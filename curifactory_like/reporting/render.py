"""Rendering one reportable into a report folder, and preparing that folder.

These are the reportable-level helpers curifactory exposes from ``curifactory.reporting``
(``render_reportable``, ``prepare_report_path``); the run report page builds on them.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

from curifactory_like.reporting.reportable import Reportable, template_environment

__all__ = ["RECORD_COLORS", "prepare_report_path", "record_color", "render_reportable"]

logger = logging.getLogger(__name__)

RECORD_COLORS: tuple[str, ...] = (
    "#b4eeb4",  # darkseagreen2
    "#d8bfd8",  # thistle
    "#ffdab9",  # peachpuff
    "#aeeeee",  # paleturquoise2
    "#fa8072",  # salmon
    "#c0c0c0",  # silver
    "#ff69b4",  # hotpink
    "#00bfff",  # deepskyblue
    "#9acd32",  # yellowgreen
)
"""Colours that tell records apart in the report (cycled by record index)."""


def record_color(index: int) -> str:
    """Return the report colour of the record at ``index`` in ``manager.records``."""
    return RECORD_COLORS[index % len(RECORD_COLORS)]


def render_reportable(
    reportable: Reportable,
    manager: Any,
    reportables_path: str,
    override_display_path: str | None = None,
    notebook: bool = False,
) -> list[str]:
    """Render ``reportable``'s files into ``reportables_path`` and return its framed HTML.

    ``reportable.path`` is ``reportables_path`` during ``render()``, then the folder as the
    page sees it (``override_display_path``, or ``"reportables"`` for a report's
    ``index.html``) for ``html()``, and it keeps that value afterwards.

    Args:
        reportable: The reportable to show.
        manager: The ``ArtifactManager`` whose ``records`` give the record's colour, or
            ``None`` (no colour).
        reportables_path: Existing or new folder ``render()`` writes into.
        override_display_path: The folder as the displaying page sees it, if not
            ``"reportables"`` (e.g. a notebook server's ``/files/...`` URL).
        notebook: Use the compact, inline-block frame meant for notebooks (no back link).

    Returns:
        The HTML as a list of strings, to be concatenated: the frame opening, the anchor, the
        title (each holding ``qualified_name``), the reportable's fragment, then the end of
        the frame.
    """
    color = ""
    records = getattr(manager, "records", None) or []
    for index, record in enumerate(records):
        if record is reportable.record:
            color = record_color(index)
            break

    os.makedirs(reportables_path, exist_ok=True)
    reportable.path = reportables_path
    reportable.render()
    reportable.rendered = True
    reportable.path = override_display_path if override_display_path is not None else "reportables"

    fragment = reportable.html()
    fragment_lines = list(fragment) if isinstance(fragment, list) else [fragment]

    frame = template_environment().get_template("reportables/frame.html").module
    name = reportable.qualified_name
    lines = [
        str(frame.open(notebook)),  # type: ignore[attr-defined]
        str(frame.anchor(name)),  # type: ignore[attr-defined]
        str(frame.title(name, color)),  # type: ignore[attr-defined]
        *fragment_lines,
    ]
    if not notebook:
        lines.append(str(frame.back_link()))  # type: ignore[attr-defined]
    lines.append(str(frame.close()))  # type: ignore[attr-defined]
    return lines


def prepare_report_path(output_path: str, report_name: str) -> tuple[str, str, str]:
    """Create the folder of report ``report_name`` under ``output_path``, with fresh
    ``graphs/`` and ``reportables/`` subfolders (an existing report's are emptied).

    Returns:
        The report folder, its graphs folder and its reportables folder.
    """
    folder_path = os.path.join(output_path, report_name)
    logger.info("Preparing report path '%s'...", folder_path)
    graphs_path = os.path.join(folder_path, "graphs")
    reportables_path = os.path.join(folder_path, "reportables")
    for subfolder in (graphs_path, reportables_path):
        if os.path.exists(subfolder):
            shutil.rmtree(subfolder)
        os.makedirs(subfolder)
    return folder_path, graphs_path, reportables_path
