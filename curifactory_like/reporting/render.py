"""Rendering one reportable: into a report folder, into a detached folder, or inline.

- ``render_reportable`` / ``prepare_report_path``: the reportable-level helpers curifactory
  exposes from ``curifactory.reporting``; the run report page builds on them.
- ``render_fragment``: render into any folder and get the HTML fragment with that folder written
  as ``PATH_PLACEHOLDER``, so the fragment can be stored and pointed at a copy of the files later
  (this is how a stage's reportables are kept with its cache).
- ``inline_fragment``: the fragment with every file it references embedded as a ``data:`` URI,
  for notebooks (``Reportable.inline_html()`` and ``Reportable._repr_html_()``).
"""

from __future__ import annotations

import base64
import html
import logging
import mimetypes
import os
import re
import shutil
import tempfile
from typing import Any
from urllib.parse import unquote

from curifactory_like.reporting.reportable import Reportable, template_environment

__all__ = [
    "PATH_PLACEHOLDER",
    "RECORD_COLORS",
    "embed_files",
    "frame_fragment",
    "inline_fragment",
    "prepare_report_path",
    "record_color",
    "render_fragment",
    "render_reportable",
]

PATH_PLACEHOLDER = "__curifactory_like_reportable_path__"
"""What ``reportable.path`` is while ``render_fragment`` calls ``html()``: a token that survives
URL quoting and HTML escaping, replaced later by wherever the rendered files end up."""

_PLACEHOLDER_REFERENCE = re.compile(re.escape(PATH_PLACEHOLDER) + r"[/\\]([^\"'\s<>()]+)")

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
    os.makedirs(reportables_path, exist_ok=True)
    reportable.path = reportables_path
    reportable.render()
    reportable.rendered = True
    reportable.path = override_display_path if override_display_path is not None else "reportables"

    fragment = reportable.html()
    fragment_lines = list(fragment) if isinstance(fragment, list) else [fragment]
    return frame_fragment(reportable, fragment_lines, manager, notebook)


def frame_fragment(
    reportable: Reportable, fragment_lines: list[str], manager: Any, notebook: bool = False
) -> list[str]:
    """Put ``reportable``'s HTML fragment in the frame of a report entry (see ``render_reportable``).

    Returns:
        The frame opening, the anchor, the title (coloured after the record's position in
        ``manager.records``), the fragment's lines, the back link (not in a notebook), the end.
    """
    color = ""
    records = getattr(manager, "records", None) or []
    for index, record in enumerate(records):
        if record is reportable.record:
            color = record_color(index)
            break

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


def render_fragment(reportable: Reportable, folder: str) -> str:
    """Render ``reportable``'s files into ``folder``; return its fragment as if it were at
    ``PATH_PLACEHOLDER``.

    ``reportable.path`` is ``folder`` during ``render()`` and ``PATH_PLACEHOLDER`` during
    ``html()``; afterwards it is restored, and ``rendered`` is left alone, so the reportable
    renders into a report later exactly as if this had not happened.
    """
    saved_path = reportable.path
    os.makedirs(folder, exist_ok=True)
    try:
        reportable.path = folder
        reportable.render()
        reportable.path = PATH_PLACEHOLDER
        fragment = reportable.html()
    finally:
        reportable.path = saved_path
    return "".join(fragment) if isinstance(fragment, list) else str(fragment)


def inline_fragment(reportable: Reportable) -> str:
    """``reportable``'s HTML fragment with the files it renders embedded as ``data:`` URIs.

    The files are rendered into a temporary folder that is removed afterwards, so nothing is
    left on disk; this is what a notebook shows.
    """
    with tempfile.TemporaryDirectory(prefix="reportable-") as folder:
        fragment = render_fragment(reportable, folder)
        return embed_files(fragment, folder)


def embed_files(fragment: str, folder: str) -> str:
    """Replace each ``PATH_PLACEHOLDER/<file>`` in ``fragment`` by that file of ``folder`` as a
    base64 ``data:`` URI; references to anything outside ``folder`` or missing are left relative.
    """
    root = os.path.realpath(folder)

    def embed(match: re.Match[str]) -> str:
        relative = unquote(html.unescape(match.group(1)))
        candidate = os.path.realpath(os.path.join(root, relative))
        if not candidate.startswith(root + os.sep) or not os.path.isfile(candidate):
            return match.group(1)
        mime = mimetypes.guess_type(candidate)[0] or "application/octet-stream"
        with open(candidate, "rb") as infile:
            payload = base64.b64encode(infile.read()).decode("ascii")
        return f"data:{mime};base64,{payload}"

    return _PLACEHOLDER_REFERENCE.sub(embed, fragment).replace(PATH_PLACEHOLDER, ".")


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
