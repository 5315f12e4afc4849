"""Laying out the report's stage graph while the run executes.

``dot`` is the slowest step of a small run's report: ~0.3 s for the full graph of a hundred
records (401 calls and 400 artifacts), after the last stage has run. The plan already says what
every call will do, so for a run that goes as planned the graph the report will draw is known
as soon as the map pass is analysed. :func:`start_prefetch` lays that graph out then, in a
``dot`` process of its own (another core; no thread of ours waits on it). :func:`take_prefetched`
hands the report that drawing only if the DOT source the report builds at the end is the very
same text; otherwise (a failed call, a call that found its outputs made by another run
meanwhile, a run stopped early) the report runs ``dot`` on its own source as before. Whatever
happens, :func:`discard` ends the process and closes its files. Above ``FULL_GRAPH_MAX_NODES``
the report draws the summary graph, which ``dot`` lays out in ~0.03 s: nothing is started.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import IO, Any

from curifactory_like.reporting.dag_graph import (
    DOT_TIMEOUT_SECONDS,
    GraphResult,
    draws_summary,
    stage_graph_source,
    timeout_result,
    trim_svg,
)
from curifactory_like.reporting.run_view import build_run_view

__all__ = ["GraphPrefetch", "discard", "start_prefetch", "take_prefetched"]

logger = logging.getLogger(__name__)


@dataclass
class GraphPrefetch:
    """A ``dot`` process drawing the graph the plan expects."""

    source: str
    summarised: bool
    process: subprocess.Popen[bytes]
    output: IO[bytes]
    started: float


def start_prefetch(manager: Any) -> GraphPrefetch | None:
    """Start drawing the graph of ``manager``'s run as its plan expects it to end.

    None when there is no plan to draw from or no ``dot`` to run (the report says why).
    """
    dag = getattr(manager, "dag", None)
    if dag is None or getattr(dag, "plan", None) is None or not dag.records:
        return None
    nodes = sum(len(outputs) + 1 for record in dag.records for outputs in record.stage_outputs)
    if draws_summary(nodes):
        return None  # the summary graph: dot takes ~0.03 s, less than building its view twice
    dot = shutil.which("dot")
    if dot is None:
        return None
    source, summarised = stage_graph_source(build_run_view(manager, expected=True))
    output = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for the process, see discard
    try:
        with tempfile.TemporaryFile() as source_file:
            source_file.write(source.encode("utf-8"))
            source_file.seek(0)
            process = subprocess.Popen(
                [dot, "-Tsvg"], stdin=source_file, stdout=output, stderr=subprocess.DEVNULL
            )
    except OSError:
        output.close()
        return None
    return GraphPrefetch(source, summarised, process, output, time.perf_counter())


def take_prefetched(
    prefetch: GraphPrefetch | None, source: str, summarised: bool
) -> GraphResult | None:
    """The prefetched drawing if it is of ``source``; None if the report must run ``dot``.

    Waits for the process at most what is left of ``DOT_TIMEOUT_SECONDS`` since it started.
    The prefetch is discarded either way.
    """
    if prefetch is None:
        return None
    try:
        if prefetch.source != source or prefetch.summarised != summarised:
            logger.debug("The run did not go as planned: drawing its stage graph now")
            return None
        left = DOT_TIMEOUT_SECONDS - (time.perf_counter() - prefetch.started)
        try:
            code = prefetch.process.wait(timeout=max(left, 0.0))
        except subprocess.TimeoutExpired:
            return timeout_result(summarised, time.perf_counter() - prefetch.started)
        if code != 0:
            logger.debug("dot failed on the planned graph (exit code %s); drawing again", code)
            return None  # the report's own run of dot says what went wrong
        prefetch.output.seek(0)
        svg = prefetch.output.read().decode("utf-8")
        logger.debug("The stage graph was drawn while the run executed")
        return GraphResult(trim_svg(svg), None, summarised, time.perf_counter() - prefetch.started)
    finally:
        discard(prefetch)


def discard(prefetch: GraphPrefetch | None) -> None:
    """End the prefetch's process if it still runs, and close its output."""
    if prefetch is None:
        return
    if prefetch.process.poll() is None:
        with contextlib.suppress(OSError):
            prefetch.process.kill()
        prefetch.process.wait()
    prefetch.output.close()
