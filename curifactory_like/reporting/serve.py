"""Serving the reports folder over HTTP (``experiment reports``), with the standard library."""

from __future__ import annotations

import functools
import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import http.server

__all__ = ["make_report_server", "serve_reports"]

logger = logging.getLogger(__name__)


@functools.cache
def _quiet_handler() -> Any:
    """The request handler class; ``http.server`` (~2 MB with ``ssl`` and ``email``) is imported
    only when reports are served, not by every run that writes a report."""
    import http.server

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        """Serves files from the reports folder; request lines go to the logger, not stderr."""

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            logger.debug("%s - %s", self.address_string(), format % args)

    return QuietHandler


def make_report_server(
    reports_path: str, host: str = "127.0.0.1", port: int = 8080
) -> http.server.ThreadingHTTPServer:
    """A server for ``reports_path`` bound to ``host:port`` (port 0 picks a free one)."""
    import http.server

    if not os.path.isdir(reports_path):
        raise FileNotFoundError(
            f"reports folder {reports_path!r} does not exist; run an experiment first or set "
            "reports_path in curifactory_config.json"
        )
    handler = functools.partial(_quiet_handler(), directory=os.path.abspath(reports_path))
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_reports(reports_path: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve ``reports_path`` at ``http://host:port/`` until interrupted (Ctrl-C).

    Binds to localhost by default; pass ``host="0.0.0.0"`` to share the reports on the
    network.
    """
    server = make_report_server(reports_path, host, port)
    print(f"Serving {reports_path} at http://{host}:{server.server_port}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
