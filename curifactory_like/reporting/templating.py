"""The jinja2 environment of the run report pages (``templates/report/``).

Autoescaping is on, so every value a template prints is escaped unless it is explicitly marked
safe (reportable fragments and graphviz's SVG, which escape their own text). ``trim_blocks``
and ``lstrip_blocks`` keep the template's indentation out of the page: a report of a thousand
records stays small.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2

__all__ = ["render_page", "report_environment", "write_page"]


@functools.lru_cache(maxsize=1)
def report_environment() -> jinja2.Environment:
    """Return the autoescaping environment for ``templates/report/*``."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("curifactory_like", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        bytecode_cache=_bytecode_cache(),
    )
    environment.filters["filesize"] = format_size
    environment.filters["duration"] = format_seconds
    return environment


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (compiling them costs ~0.2 s per run).

    jinja2's per-user cache folder in the temporary directory; entries are keyed by template
    name and source checksum, so an edited template is compiled again. ``None`` (compile every
    time) when that folder cannot be used.
    """
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


def render_page(name: str, **context: Any) -> str:
    """Render the template ``report/<name>`` with ``context``."""
    return report_environment().get_template(f"report/{name}").render(**context)


def write_page(path: str, name: str, **context: Any) -> None:
    """Render ``report/<name>`` into ``path`` (atomically), piece by piece.

    ``render`` holds every piece of the page at once before joining them: for the pages of a
    thousand records that is ~10 MB of small strings on top of the page itself.
    """
    from curifactory_like.caching import atomic_open

    template = report_environment().get_template(f"report/{name}")
    with atomic_open(path, "w", encoding="utf-8") as outfile:
        outfile.writelines(template.generate(**context))


def format_size(size: Any) -> str:
    """``1536`` -> ``"1.5 KiB"``; ``None`` -> ``""``."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns


def format_seconds(seconds: Any) -> str:
    """``0.0123`` -> ``"0.012 s"``, ``125`` -> ``"2 min 5 s"``; ``None`` -> ``""``."""
    if seconds is None:
        return ""
    value = float(seconds)
    if value < 10:
        return f"{value:.3f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
