"""The run's stage graph, drawn with graphviz once per report.

:func:`stage_graph_source` writes the DOT source for a :class:`~.run_view.RunView`: records as
clusters (linked to their detail in the report), one node per stage call and per artifact,
coloured by what the call did. Above :data:`FULL_GRAPH_MAX_NODES` nodes, where ``dot`` gets slow
and the SVG heavy, it draws a summary instead: records with the same stages become one cluster,
with one node per stage listing how many calls computed, loaded, skipped or failed.

:func:`render_svg` runs ``dot`` once and trims the SVG for inlining; when ``dot`` is missing or
fails it returns a note instead. User text reaches DOT only through :func:`quote` (escaped for
DOT, and escaped again for SVG by ``dot`` itself).

``_add_record_subgraph``, ``map_single_svg`` and ``map_full_svg`` are curifactory's per-record
``graphviz.Digraph`` builders, kept for code and tests that call them; the report does not.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from curifactory_like.reporting.render import record_color
from curifactory_like.reporting.run_view import (
    CallState,
    RecordView,
    RunView,
    _artifact_details,
)
from curifactory_like.reporting.templating import report_environment

__all__ = [
    "DOT_TIMEOUT_SECONDS",
    "FULL_GRAPH_MAX_NODES",
    "STATE_STYLES",
    "GraphResult",
    "draws_summary",
    "map_full_svg",
    "map_single_svg",
    "quote",
    "render_svg",
    "stage_graph_source",
    "timeout_result",
    "trim_svg",
]

logger = logging.getLogger(__name__)

FULL_GRAPH_MAX_NODES = 1000
"""Stage calls plus artifacts up to which every call is drawn; above, the summary graph."""

DOT_TIMEOUT_SECONDS = 60.0
"""How long ``dot`` may take before the report shows a note instead of the graph."""

STATE_STYLES: dict[CallState, dict[str, str]] = {
    CallState.COMPUTED: {"fillcolor": "#86efac", "color": "#166534", "style": "filled,bold"},
    CallState.LOADED: {"fillcolor": "#bfdbfe", "color": "#1e40af", "style": "filled"},
    CallState.SKIPPED: {"fillcolor": "#ffffff", "color": "#6b7280", "style": "filled,dashed"},
    CallState.FAILED: {"fillcolor": "#fca5a5", "color": "#b91c1c", "style": "filled,bold"},
    CallState.NOT_RUN: {"fillcolor": "#f3f4f6", "color": "#9ca3af", "style": "filled,dotted"},
}
"""DOT attributes of a stage node per state; ``style.css`` uses the same colours for the legend."""

EDGE_COLOR = "#4b5563"
"""Colour of every edge (set once in the SVG's own ``<style>``, not on every edge)."""

_GRAPH_HEADER = (
    "digraph run {",
    'graph [rankdir=LR compound=true fontname="Helvetica,Arial,sans-serif" fontsize=10 '
    'nodesep=.12 ranksep=.25 bgcolor="transparent"]',
    'node [fontname="Helvetica,Arial,sans-serif" fontsize=9 shape=box height=.22 '
    'margin="0.06,0.02"]',
    f'edge [arrowsize=.5 color="{EDGE_COLOR}"]',
)

_ARTIFACT_ATTRS = (
    'shape=plaintext class="artifact" fontsize=8 height=.15 margin="0.02,0" fontcolor="#374151"'
)


@dataclass
class GraphResult:
    """The outcome of drawing: an SVG to inline, or a note saying why there is none."""

    svg: str | None
    note: str | None
    summarised: bool
    seconds: float = 0.0


def quote(text: Any) -> str:
    """``text`` as a quoted DOT string shown literally (no escapes, no HTML-like label)."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "").replace("\n", "\\n") + '"'


def _attrs(**attributes: Any) -> str:
    return " ".join(f"{key}={quote(value)}" for key, value in attributes.items())


def _state_attrs(state: CallState) -> str:
    return _attrs(**STATE_STYLES[state])


# ---------------------------------------------------------------------- full graph


def _record_cluster(record: RecordView) -> Iterator[str]:
    yield f"subgraph cluster_r{record.index} {{"
    yield _attrs(
        label=record.title,
        URL=f"#record-{record.index}",
        tooltip=f"record {record.index} ({record.hash[:10]})",
        style="filled",
        fillcolor="#ffffff",
        color=record.color,
        penwidth="2.5",
        **{"class": "record"},
    )
    for call in record.calls:
        yield (
            f"{call.node_id} [label={quote(call.stage)} id={call.node_id} "
            f'class="stage {call.state.value}" {_state_attrs(call.state)}]'
        )
        for artifact in call.outputs:
            yield f"a{artifact.id} [label={quote(artifact.name)} {_ARTIFACT_ATTRS}]"
    yield "}"


def _full_source(view: RunView) -> list[str]:
    lines = list(_GRAPH_HEADER)
    produced: set[int] = set()
    edges: list[str] = []
    for record in view.records:
        lines.extend(_record_cluster(record))
        for call in record.calls:
            for artifact in call.outputs:
                produced.add(artifact.id)
                edges.append(f"{call.node_id} -> a{artifact.id}")
    for record in view.records:
        for call in record.calls:
            edges.extend(f"a{i} -> {call.node_id}" for i in call.inputs if i in produced)
    lines.extend(edges)
    lines.append("}")
    return lines


# ---------------------------------------------------------------------- summary graph


def _dominant(states: Counter[CallState]) -> CallState:
    for state in (CallState.FAILED, CallState.COMPUTED, CallState.LOADED, CallState.SKIPPED):
        if states.get(state):
            return state
    return CallState.NOT_RUN


def _summary_source(view: RunView) -> list[str]:
    """One cluster per distinct stage sequence, one node per stage with per-state counts."""
    groups: dict[tuple[bool, tuple[str, ...]], list[RecordView]] = {}
    for record in view.records:
        key = (record.is_aggregate, tuple(call.stage for call in record.calls))
        groups.setdefault(key, []).append(record)

    lines = list(_GRAPH_HEADER)
    artifact_node: dict[int, str] = {}
    for number, ((is_aggregate, stages), members) in enumerate(groups.items()):
        first, last = members[0], members[-1]
        kind = "aggregate record" if is_aggregate else "record"
        plural = "s" if len(members) > 1 else ""
        names = first.name if len(members) == 1 else f"{first.name} ... {last.name}"
        lines.append(f"subgraph cluster_g{number} {{")
        lines.append(
            _attrs(
                label=f"{len(members)} {kind}{plural}: {names}",
                URL=f"#record-{first.index}",
                style="filled",
                fillcolor="#ffffff",
                color=record_color(first.index),
                penwidth="2.5",
                **{"class": "record group"},
            )
        )
        for position, stage in enumerate(stages):
            states: Counter[CallState] = Counter(m.calls[position].state for m in members)
            counts = ", ".join(f"{n} {s.label}" for s, n in states.items())
            node = f"g{number}_{position}"
            state = _dominant(states)
            label = quote(stage + "\n" + counts)
            lines.append(
                f'{node} [label={label} id={node} class="stage {state.value}" '
                f"{_state_attrs(state)}]"
            )
            for offset, artifact in enumerate(members[0].calls[position].outputs):
                artifact_id = f"g{number}_{position}_{offset}"
                label = artifact.name if len(members) == 1 else f"{artifact.name} x{len(members)}"
                lines.append(f"{artifact_id} [label={quote(label)} {_ARTIFACT_ATTRS}]")
                lines.append(f"{node} -> {artifact_id}")
            for member in members:
                for offset, artifact in enumerate(member.calls[position].outputs):
                    artifact_node[artifact.id] = f"g{number}_{position}_{offset}"
        lines.append("}")

    flows: Counter[tuple[str, str]] = Counter()
    for number, members in enumerate(groups.values()):
        for member in members:
            for position, call in enumerate(member.calls):
                for input_id in call.inputs:
                    producer = artifact_node.get(input_id)
                    if producer is not None:
                        flows[(producer, f"g{number}_{position}")] += 1
    for (producer, consumer), count in flows.items():
        label = f" [label={quote(f'x{count}')} fontsize=8]" if count > 1 else ""
        lines.append(f"{producer} -> {consumer}{label}")
    lines.append("}")
    return lines


def stage_graph_source(view: RunView, max_nodes: int | None = None) -> tuple[str, bool]:
    """The DOT source of the run's stage graph, and whether it is the summary.

    The summary is drawn when stage calls plus artifacts exceed ``max_nodes`` (default
    :data:`FULL_GRAPH_MAX_NODES`).
    """
    summarised = draws_summary(view.call_count + view.artifact_count, max_nodes)
    lines = _summary_source(view) if summarised else _full_source(view)
    return "\n".join(lines) + "\n", summarised


def draws_summary(nodes: int, max_nodes: int | None = None) -> bool:
    """Whether a graph of ``nodes`` stage calls plus artifacts is drawn as the summary."""
    return nodes > (FULL_GRAPH_MAX_NODES if max_nodes is None else max_nodes)


# ---------------------------------------------------------------------- running dot

_XML_PROLOGUE = re.compile(r"^.*?(?=<svg\b)", re.S)
_COMMENTS = re.compile(r"<!--.*?-->\n?", re.S)
_TITLES = re.compile(r"<title>[^<]*</title>\n?")
_AUTO_IDS = re.compile(r' id="(?:graph|node|edge|clust|a_clust|a_node|a_edge)\d+"')
_FONT_FAMILY = re.compile(r' font-family="[^"]*"')
_EDGE_PAINT = re.compile(f' (?:fill="none" )?stroke="{EDGE_COLOR}"| fill="{EDGE_COLOR}"')
_GEOMETRY = re.compile(r' (points|d|x|y|cx|cy|rx|ry)="([^"]*)"')
_DECIMALS = re.compile(r"(\d\.\d)\d+")


def _round_geometry(match: re.Match[str]) -> str:
    rounded = _DECIMALS.sub(r"\1", match.group(2))
    return f' {match.group(1)}="{rounded}"'


_SVG_STYLE = (
    "<style>svg.dag text{font-family:Helvetica,Arial,sans-serif}"
    f"svg.dag .edge path{{fill:none;stroke:{EDGE_COLOR}}}"
    f"svg.dag .edge polygon{{fill:{EDGE_COLOR};stroke:{EDGE_COLOR}}}</style>"
)
"""What :func:`trim_svg` strips from every element, restored once for the whole SVG."""


def trim_svg(svg: str) -> str:
    """Make dot's SVG small enough to inline for hundreds of records.

    Drops the XML prologue, comments, tooltips (``<title>``) and generated element ids, and
    rounds coordinates to 0.1 pt. The font and the edge colour, the same on every element, are
    set once by a ``<style>`` at the top of the SVG instead, so it stays self-contained.
    """
    svg = _XML_PROLOGUE.sub("", svg, count=1)
    svg = _COMMENTS.sub("", svg)
    svg = _TITLES.sub("", svg)
    svg = _AUTO_IDS.sub("", svg)
    svg = _FONT_FAMILY.sub("", svg)
    svg = _EDGE_PAINT.sub("", svg)
    svg = _GEOMETRY.sub(_round_geometry, svg)
    svg = svg.replace("<svg ", '<svg class="dag" role="img" aria-label="stage graph" ', 1)
    end_of_tag = svg.index(">") + 1
    return svg[:end_of_tag] + "\n" + _SVG_STYLE + svg[end_of_tag:]


def timeout_result(summarised: bool, seconds: float) -> GraphResult:
    """The note shown when ``dot`` ran past :data:`DOT_TIMEOUT_SECONDS`."""
    return GraphResult(
        None,
        f"graphviz took longer than {DOT_TIMEOUT_SECONDS:.0f} s to lay out the stage graph, "
        "so it is not drawn; its DOT source is in graphs/dag.gv.",
        summarised,
        seconds,
    )


def render_svg(source: str, summarised: bool = False) -> GraphResult:
    """Run ``dot -Tsvg`` once on ``source``; a note instead of the SVG if that is impossible."""
    import time

    dot = shutil.which("dot")
    if dot is None:
        return GraphResult(
            None,
            "The graphviz 'dot' program was not found, so the stage graph is not drawn. "
            "Install graphviz (e.g. 'apt-get install graphviz' or 'conda install graphviz') "
            "and regenerate the report; its DOT source is in graphs/dag.gv.",
            summarised,
        )
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            [dot, "-Tsvg"],
            input=source.encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return timeout_result(summarised, time.perf_counter() - started)
    except OSError as exc:
        return GraphResult(None, f"graphviz 'dot' could not be run ({exc}).", summarised)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        error = completed.stderr.decode("utf-8", "replace").strip().splitlines()
        logger.error("graphviz failed to draw the stage graph: %s", "\n".join(error))
        return GraphResult(
            None,
            "graphviz failed to draw the stage graph: "
            + (error[-1] if error else f"exit code {completed.returncode}"),
            summarised,
            seconds,
        )
    return GraphResult(trim_svg(completed.stdout.decode("utf-8")), None, summarised, seconds)


# ---------------------------------------------------------------------- curifactory's builders


def _artifact_label(name: str, preview: str, path: str) -> Any:
    macro = report_environment().get_template("report/dot_labels.txt").module
    return str(macro.artifact(name, preview, path)).strip()  # type: ignore[attr-defined]


def _add_record_subgraph(
    dot: Any, record_index: int, record: Any, manager: Any, detailed: bool = True
) -> None:
    """Add ``record``'s stages and artifacts to the ``graphviz.Digraph`` ``dot`` (curifactory).

    The record is a cluster ``cluster_<index>`` with a node ``<index>_<stage>`` per stage and
    ``a<artifact index>`` per artifact of ``manager.artifacts`` made by the record. Edges go
    from input artifacts to stages and from stages to their outputs; with ``detailed`` (where
    artifact nodes show preview and path) inputs made by other records are left out. The edges
    are added before the cluster, as curifactory does.
    """
    from graphviz import escape

    artifacts = list(getattr(manager, "artifacts", []))
    own_outputs = {i for outputs in record.stage_outputs for i in outputs}
    for position, inputs in enumerate(record.stage_inputs):
        for artifact_index in inputs:
            if artifact_index == -1 or (detailed and artifact_index not in own_outputs):
                continue
            dot.edge(
                f"a{artifact_index}", f"{record_index}_{record.stages[position]}", arrowsize=".65"
            )
    for position, outputs in enumerate(record.stage_outputs):
        for artifact_index in outputs:
            dot.edge(
                f"{record_index}_{record.stages[position]}", f"a{artifact_index}", arrowsize=".65"
            )

    with dot.subgraph(name=f"cluster_{record_index}") as cluster:
        cluster.attr(color=record_color(record_index))
        cluster.attr(style="filled")
        name = record.params.name if record.params is not None else "None"
        cluster.attr(label=escape(f"record {record_index}") + "\\n" + escape(f"params: {name}"))
        for stage in record.stages:
            cluster.node(
                f"{record_index}_{stage}",
                escape(stage),
                style="filled",
                fillcolor="white",
                fontsize="12",
            )
        for artifact_index, artifact in enumerate(artifacts):
            if getattr(artifact, "init_record", None) is not record:
                continue
            if detailed:
                preview, path, _ = _artifact_details(artifact)
                cluster.node(
                    f"a{artifact_index}",
                    _artifact_label(str(artifact.name), preview, path or "no file"),
                    shape="none",
                    fontsize="8",
                    margin="0",
                )
            else:
                cluster.node(
                    f"a{artifact_index}",
                    escape(str(artifact.name)),
                    shape="rectangle",
                    fontsize="10",
                    height=".20",
                )


def _digraph(**attributes: str) -> Any:
    from graphviz import Digraph

    dot = Digraph()
    dot.attr(compound="true", **attributes)
    dot.format = "svg"
    return dot


def map_single_svg(manager: Any, record: Any, detailed: bool = True) -> Any:
    """A ``graphviz.Digraph`` of one record's stages and artifacts (curifactory's function)."""
    dot = _digraph(nodesep=".2", ranksep=".2")
    for index, candidate in enumerate(manager.records):
        if candidate is record:
            _add_record_subgraph(dot, index, record, manager, detailed)
    return dot


def map_full_svg(manager: Any, detailed: bool = False) -> Any:
    """A ``graphviz.Digraph`` of every record of ``manager`` (curifactory's function).

    The run report does not use it: it draws :func:`stage_graph_source` instead, which also
    shows what each call did.
    """
    dot = _digraph(fontsize="10", nodesep=".15", ranksep=".15")
    for index, record in enumerate(manager.records):
        _add_record_subgraph(dot, index, record, manager, detailed)
    return dot
