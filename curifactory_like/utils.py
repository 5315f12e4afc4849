"""Small helpers shared across the package, under curifactory's names.

``get_configuration`` lives here because user code and tests patch
``curifactory_like.utils.get_configuration``; the package always calls it through this module.
"""

from __future__ import annotations

import contextlib
import logging
import reprlib
import sys
import weakref
from typing import Any

from .config import CONFIGURATION_FILE, load_configuration

__all__ = [
    "CONFIGURATION_FILE",
    "TIMESTAMP_FORMAT",
    "get_configuration",
    "human_readable_mem_usage",
    "human_readable_time",
    "init_logging",
    "preview_object",
    "set_logging_prefix",
]

TIMESTAMP_FORMAT = "%Y-%m-%d-T%H%M%S"
"""The datetime format used in run reference names."""

OBJECT_PREVIEW_STRING_LENGTH = 30
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = OBJECT_PREVIEW_STRING_LENGTH + 10
LOGGER_NAME = "curifactory_like"
_OWN_HANDLERS: weakref.WeakSet[logging.Handler] = weakref.WeakSet()
"""Handlers ``init_logging`` installed (so a reconfiguration removes exactly those)."""


def get_configuration() -> dict[str, Any]:
    """Return the project configuration (``curifactory_config.json`` with defaults)."""
    return load_configuration()


def get_command_output(cmd: list[str], silent: bool = False) -> str:
    """Run a command and return its stdout (stderr swallowed; "" if it cannot run)."""
    import subprocess

    try:
        completed = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return completed.stdout


def human_readable_mem_usage(byte_count: float) -> str:
    """Format a byte count as B/KB/MB/GB."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(byte_count) < 1024 or unit == "GB":
            return f"{byte_count:.2f}{unit}"
        byte_count /= 1024
    return f"{byte_count:.2f}GB"  # pragma: no cover


def human_readable_time(seconds: float) -> str:
    """Format seconds as ms / s / min / h."""
    if seconds < 1:
        return f"{seconds * 1000:.2f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    if seconds < 3600:
        return f"{seconds / 60:.2f}min"
    return f"{seconds / 3600:.2f}h"


def preview_object(obj: Any) -> str:
    """A one-line preview of an object with its type and shape or length.

    Cheap for large objects: arrays and frames are described by shape, containers by a
    size-limited repr, never by rendering the whole object.
    """
    shape = getattr(obj, "shape", None)
    if shape is not None and not isinstance(obj, (str, bytes)):
        text = f"{type(obj).__name__}"
    elif isinstance(obj, (str, int, float, bool, type(None))):
        text = str(obj)[: OBJECT_PREVIEW_STRING_LENGTH + 1]
    else:
        text = _short_text(obj)
    preview = f"({type(obj).__name__}) {text[:OBJECT_PREVIEW_STRING_LENGTH]}"
    if len(text) > OBJECT_PREVIEW_STRING_LENGTH:
        preview += "..."
    if shape is not None:
        preview += f" shape: {shape() if callable(shape) else shape}"
    elif hasattr(obj, "__len__"):
        with contextlib.suppress(TypeError):
            preview += f" len: {len(obj)}"
    return preview


def _short_text(obj: Any, depth: int = 0) -> str:
    """A few characters describing a container without rendering its (possibly huge) items."""
    if isinstance(obj, (str, int, float, bool, type(None))):
        return repr(obj)[: OBJECT_PREVIEW_STRING_LENGTH + 1]
    if depth >= 1 or getattr(obj, "shape", None) is not None:
        return f"<{type(obj).__name__}>"
    if isinstance(obj, dict):
        items = [f"{k!r}: {_short_text(v, depth + 1)}" for k, v in list(obj.items())[:4]]
        return "{" + ", ".join(items) + (", ...}" if len(obj) > 4 else "}")
    if isinstance(obj, (list, tuple)):
        items = [_short_text(v, depth + 1) for v in list(obj[:4])]
        return "[" + ", ".join(items) + (", ...]" if len(obj) > 4 else "]")
    return _SHORT_REPR.repr(obj)


class _PrefixFilter(logging.Filter):
    """Adds the ``prefix`` field (e.g. ``[param set name] ``) to every log record."""

    prefix = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.prefix = _PrefixFilter.prefix
        return True


def set_logging_prefix(prefix: str) -> None:
    """Set the text put before every log message (the active parameter set's name)."""
    _PrefixFilter.prefix = prefix


def init_logging(
    log_path: str | None = None,
    level: int = logging.INFO,
    log_errors: bool = False,
    include_process: bool = False,
    no_color: bool = False,
    quiet: bool = False,
    plain: bool = False,
    disable_non_cf_loggers: bool = True,
) -> logging.Logger:
    """Configure the package logger: a plain file log and a rich (or plain) console log."""
    process = " {PID:%(process)s}" if include_process else ""
    from .logformat import SharedFormatter

    plain_format = SharedFormatter(f"%(asctime)s [%(levelname)s]{process} - %(prefix)s%(message)s")
    package_logger = logging.getLogger(LOGGER_NAME)
    root = logging.getLogger()
    for owner in (package_logger, root):
        for handler in list(owner.handlers):
            if handler in _OWN_HANDLERS or owner is package_logger:
                owner.removeHandler(handler)
                handler.close()
    package_logger.setLevel(level)
    package_logger.propagate = True
    # with disable_non_cf_loggers (the default) only the package's own messages are handled;
    # otherwise the handlers sit on the root logger and every library's messages reach them
    logger = package_logger if disable_non_cf_loggers else root
    if not disable_non_cf_loggers:
        root.setLevel(level)
    prefix_filter = _PrefixFilter()
    if log_path is not None:
        file_handler = logging.FileHandler(log_path, encoding="utf-8")
        file_handler.setFormatter(plain_format)
        file_handler.addFilter(prefix_filter)
        _OWN_HANDLERS.add(file_handler)
        logger.addHandler(file_handler)
    if not quiet:
        console: logging.Handler
        # rich formatting only pays off on a terminal; piped or redirected output is plain
        # (and several times cheaper per line)
        if plain or not sys.stdout.isatty():
            console = logging.StreamHandler(sys.stdout)
            console.setFormatter(plain_format)
        else:
            from rich.console import Console
            from rich.logging import RichHandler

            console = RichHandler(
                console=Console(stderr=False, no_color=no_color),
                show_path=False,
                log_time_format="%X",
                keywords=["-----", "(aggregate)"],
            )
            console.setFormatter(logging.Formatter(f"{process.strip()}%(prefix)s%(message)s"))
        console.addFilter(prefix_filter)
        console.setLevel(level)
        _OWN_HANDLERS.add(console)
        logger.addHandler(console)
    elif log_path is None:
        package_logger.addHandler(logging.NullHandler())
    return package_logger


def get_logger() -> logging.Logger:
    """The package logger (child loggers hang off it)."""
    return logging.getLogger(LOGGER_NAME)
