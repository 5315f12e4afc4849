"""The ``Reportable`` base class and the template environment every reportable renders with.

A reportable is one piece of a run report (a table, a figure, some JSON). Its life, which
curifactory projects' custom subclasses rely on, is:

1. a stage builds it and calls ``record.report(reportable)``; the record sets ``record``,
   ``stage`` and ``qualified_name`` (``[(Aggregate)_][<param set>_]<stage>_<name or number>``);
2. when the stage finishes, the reportable is rendered into the stage's cache folder (``path``
   is that folder during ``render()``, then a placeholder during ``html()``), so that when the
   stage is later loaded or skipped it is reported again from its rendered files and data
   (see ``curifactory_like.reporting.persistence``; nothing is pickled);
3. when a report is generated, ``path`` is set to the folder the reportable may write files into
   and ``render()`` is called; then ``path`` is set to the same folder *as seen from the report
   page* (``"reportables"``) and ``html()`` is called for the fragment that references them.

``html()`` returns an HTML fragment (a string, or a list of strings that are concatenated).
The built-in reportables build theirs from the jinja2 templates in
``curifactory_like/templates/reportables/`` with autoescaping on, so user-controlled text
(names, values, cells) is always escaped.
"""

from __future__ import annotations

import functools
import os
import posixpath
from typing import Any
from urllib.parse import quote

import jinja2

__all__ = ["Reportable", "render_template", "template_environment"]


@functools.lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """Return the package's jinja2 environment (templates shipped as package data, autoescaped)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("curifactory_like", "templates"), autoescape=True
    )


def render_template(name: str, **context: Any) -> str:
    """Render the package template ``name`` (e.g. ``"reportables/image.html"``) with ``context``."""
    return template_environment().get_template(name).render(**context)


class Reportable:
    """Base class of everything that can be added to a run report with ``record.report()``.

    Subclasses must implement ``html()``; those that write files (images, ...) also implement
    ``render()``, writing into the folder ``self.path`` under a name built from
    ``self.qualified_name``, and reference the file from ``html()`` as ``self.path/<file>``
    (``path`` then holds the folder relative to the report page).

    Args:
        name: Suffix of the reportable's title and file names. When ``None`` the record numbers
            the reportable instead.
        group: Reportables sharing a group are shown together in the report, with their own
            entry in the table of contents.
    """

    def __init__(self, name: str | None = None, group: str | None = None) -> None:
        self.rendered: bool = False
        """Whether ``render()`` has been called by the reporting machinery."""
        self.path: str = ""
        """Folder to write files into during ``render()``; the same folder relative to the
        report page during ``html()``. Set by the reporting machinery."""
        self.name: str | None = name
        """The (short) name given by the user. Use ``qualified_name`` for file names."""
        self.qualified_name: str | None = name
        """The full name, prefixed with the aggregate marker, param set and stage names.
        Set by ``record.report()``."""
        self.group: str | None = group
        """Reportables with the same group are shown together."""
        self.record: Any = None
        """The record this reportable came from, set by ``record.report()``."""
        self.stage: str = ""
        """The name of the stage that reported this reportable."""

    def html(self) -> str | list[str]:
        """Return the HTML fragment showing this reportable (a string or a list of strings)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement html(), returning the HTML fragment that "
            "shows it in the report"
        )

    def render(self) -> None:
        """Write any files ``html()`` references into the folder ``self.path`` (optional)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.qualified_name or self.name or '(unnamed)'!r}>"

    def inline_html(self) -> str:
        """Return the HTML fragment with every file it shows embedded as a ``data:`` URI.

        The reportable is rendered into a temporary folder that is removed afterwards, so the
        fragment needs no files next to it (a notebook cell, an e-mail). ``path`` and
        ``rendered`` are left as they were.
        """
        from curifactory_like.reporting.render import inline_fragment

        return inline_fragment(self)

    def _repr_html_(self) -> str:
        """Jupyter display: the reportable in its compact frame, with images embedded inline."""
        from curifactory_like.reporting.render import frame_fragment

        manager = getattr(self.record, "manager", None)
        return "".join(frame_fragment(self, [self.inline_html()], manager, notebook=True))

    # -- helpers for subclasses that write a file next to the report --------------------------

    def _file_name(self, extension: str) -> str:
        """File name for this reportable's output: ``<qualified_name><extension>``.

        Path separators in the name are replaced so a parameter-set name such as ``"a/b"``
        cannot move the file out of the reportables folder.
        """
        stem = self.qualified_name or self.name or type(self).__name__
        for separator in {"/", "\\", os.sep}:
            stem = stem.replace(separator, "_")
        return stem + extension

    def _output_path(self, extension: str) -> str:
        """Filesystem path ``render()`` writes the output file with ``extension`` to."""
        return os.path.join(self.path, self._file_name(extension))

    def _display_src(self, extension: str) -> str:
        """URL of the output file as ``html()`` references it (relative to the report page)."""
        file_url = quote(self._file_name(extension))
        if not self.path:
            return file_url
        folder_url = quote(str(self.path).replace(os.sep, "/"), safe="/:")
        return posixpath.join(folder_url, file_url)
