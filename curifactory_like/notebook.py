"""Jupyter support: showing a run in a notebook, and the notebook ``experiment run --notebook`` writes.

Display (each takes the ``ArtifactManager`` first; the manager's ``display_*`` methods delegate
here) returns an ``IPython.display.HTML`` object:

- ``display_info``: experiment, run, status, git commit and parameter sets;
- ``display_all_reportables`` / ``display_record_reportables`` / ``display_group_reportables`` /
  ``display_stage_reportables`` / ``display_reportable``: rendered reportables, with their
  files (figures, images) embedded as ``data:`` URIs so the notebook needs no file server;
- ``display_stage_graph``: the records' stages and artifacts as a graphviz SVG.

``record_html`` is the HTML behind ``Record._repr_html_``. ``write_experiment_notebook`` (in
``experiment_notebook``, re-exported here) writes
``<path>.ipynb`` (and, on request, the same cells as a ``<path>.py`` script) that reruns a
finished experiment dry, so every artifact loads from the cache, and binds ``record_i`` /
``state_i`` for exploration.

All HTML comes from the autoescaping templates in ``templates/notebook/``. IPython and graphviz
are imported inside the functions that need them, never when this module is imported.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from .caching.lazy import Lazy
from .experiment_notebook import write_experiment_notebook
from .reporting.reportable import render_template
from .utils import preview_object

if TYPE_CHECKING:
    from IPython.display import HTML

__all__ = [
    "display_all_reportables",
    "display_group_reportables",
    "display_info",
    "display_record_reportables",
    "display_reportable",
    "display_stage_graph",
    "display_stage_reportables",
    "record_html",
    "write_experiment_notebook",
]

logger = logging.getLogger(__name__)

STATUS_COLORS: dict[str, str] = {
    "incomplete": "darkorange",  # the run started and has not finished (or was killed)
    "complete": "green",  # run() returned without an error
    "error": "red",  # a stage or run() raised
    "LIVE": "darkcyan",  # a manager used directly in a notebook or script
}

ARTIFACT_COLORS: dict[str, str] = {
    "computed": "#b4eeb4",  # the stage ran and produced it in this run
    "loaded": "#add8e6",  # read back from the cache
    "skipped": "#dcdcdc",  # left on disk: no later stage needed it
    "cached": "#add8e6",  # (map only) found in the cache
    "missing": "#ffdab9",  # (map only) not cached yet, will be computed
}


# ---------------------------------------------------------------------------- display


def _as_html(markup: str) -> HTML:
    from IPython.display import HTML

    return HTML(markup)


def display_info(manager: Any) -> HTML:
    """Show the run's info block: identity, status, git commit, run line and parameter sets."""
    manager.store()
    listed: set[str] = set()
    param_groups: list[tuple[str, list[tuple[str, str]]]] = []
    for param_file, sets in manager.param_file_param_sets.items():
        param_groups.append((param_file, [(str(name), str(hash_)) for name, hash_ in sets]))
        listed.update(str(hash_) for _, hash_ in sets)
    live_sets = [
        (str(p.name), str(p.hash)) for p in manager.get_all_param_sets() if p.hash not in listed
    ]
    if live_sets:
        param_groups.append(("Parameter sets not from a file (live)", live_sets))
    markup = render_template(
        "notebook/info.html",
        experiment_name=manager.experiment_name,
        run_number=manager.experiment_run_number,
        reference=manager.get_reference_name(),
        timestamp=manager.run_timestamp.strftime("%m/%d/%Y %H:%M:%S"),
        hostname=manager.hostname,
        status=str(manager.status),
        status_color=STATUS_COLORS.get(str(manager.status), "black"),
        error=manager.error if manager.status == "error" else None,
        interactive=getattr(manager, "interactive", False),
        commit=manager.git_commit_hash,
        dirty=manager.git_workdir_dirty,
        run_line=manager.run_line,
        reproduction_line=getattr(manager, "reproduction_line", ""),
        notes=manager.notes,
        param_files=[str(f) for f in manager.parameter_files],
        param_groups=param_groups,
        live=manager.status == "LIVE",
    )
    return _as_html(markup)


def display_all_reportables(manager: Any) -> HTML:
    """Show every reportable of the run: each group under its name, then the ungrouped ones."""
    manager.store()
    sections: list[tuple[str | None, list[Any]]] = list(manager.get_grouped_reportables().items())
    ungrouped = manager.get_ungrouped_reportables()
    if ungrouped:
        sections.append((None, ungrouped))
    return _reportables_html(manager, sections, "No reportables yet.")


def display_record_reportables(manager: Any, record: Any) -> HTML:
    """Show the reportables reported on ``record``."""
    manager.store()
    chosen = [r for r in manager.reportables if r.record is record]
    return _reportables_html(manager, [(None, chosen)], "This record has no reportables.")


def display_group_reportables(manager: Any, group_name: str) -> HTML:
    """Show the reportables of group ``group_name``, under the group's name."""
    manager.store()
    chosen = [r for r in manager.reportables if r.group == group_name]
    return _reportables_html(
        manager, [(group_name, chosen)], f"No reportables in group {group_name!r}."
    )


def display_stage_reportables(manager: Any, stage_name: str) -> HTML:
    """Show the reportables reported by stage ``stage_name`` (on any record)."""
    manager.store()
    chosen = [r for r in manager.reportables if r.stage == stage_name]
    return _reportables_html(manager, [(None, chosen)], f"Stage {stage_name!r} has no reportables.")


def display_reportable(manager: Any, reportable: Any) -> HTML:
    """Show one reportable."""
    manager.store()
    return _reportables_html(manager, [(None, [reportable])], "")


def _reportables_html(
    manager: Any, sections: list[tuple[str | None, list[Any]]], empty_note: str
) -> HTML:
    rendered = [
        (title, [Markup(_inline_reportable_html(r, manager)) for r in reportables])
        for title, reportables in sections
        if reportables
    ]
    markup = render_template("notebook/reportables.html", sections=rendered, empty_note=empty_note)
    return _as_html(markup)


def _inline_reportable_html(reportable: Any, manager: Any) -> str:
    """``reportable`` in its notebook frame, with the files it renders embedded as data URIs
    (nothing is left on disk; ``path`` and ``rendered`` are left as they were)."""
    from .reporting.render import frame_fragment, inline_fragment

    lines = frame_fragment(reportable, [inline_fragment(reportable)], manager, notebook=True)
    return "".join(lines)


# ---------------------------------------------------------------------------- stage graph


def display_stage_graph(manager: Any) -> HTML:
    """Show the records' stages and artifacts as an SVG drawn by graphviz.

    One box per record (its colour in the report), stages as rectangles, artifacts as ellipses
    coloured by what the run did with them (computed, loaded, skipped). Without the ``dot``
    program a note says so instead.
    """
    import graphviz

    records, artifacts = manager.records, manager.artifacts
    dag = getattr(manager, "map", None)
    if not any(r.stages for r in records) and dag is not None:
        records, artifacts = dag.records, dag.artifacts  # a map-only run: draw the plan
    legend = [(state, ARTIFACT_COLORS[state]) for state in ("computed", "loaded", "skipped")]
    if not any(r.stages for r in records):
        return _as_html(render_template("notebook/graph.html", note="No stages have run yet."))
    try:
        svg = _stage_graph(records, artifacts).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        note = (
            "The stage graph needs the dot program of Graphviz, which was not found on PATH; "
            "install Graphviz (for example apt-get install graphviz, or conda install graphviz)."
        )
        return _as_html(render_template("notebook/graph.html", note=note))
    svg = svg[svg.find("<svg") :]  # drop the XML declaration and doctype
    return _as_html(render_template("notebook/graph.html", svg=Markup(svg), legend=legend))


def _artifact_state(artifact: Any) -> str:
    if hasattr(artifact, "cached") and not hasattr(artifact, "action"):
        return "cached" if artifact.cached else "missing"
    return str(getattr(artifact, "action", "computed"))


def _stage_graph(records: list[Any], artifacts: list[Any]) -> Any:
    import graphviz

    from .reporting.render import record_color

    dot = graphviz.Digraph(
        "stages",
        graph_attr={"rankdir": "TB", "fontsize": "11", "fontname": "sans-serif"},
        node_attr={"fontsize": "10", "fontname": "sans-serif", "style": "filled"},
    )
    drawn: set[int] = set()
    for index, record in enumerate(records):
        name = record.params.name if record.params is not None else "None"
        label = f"Record {index}: {name} ({record.get_hash()[:8]})"
        if record.is_aggregate:
            label += " aggregate"
        with dot.subgraph(name=f"cluster_record_{index}") as cluster:
            cluster.attr(
                label=graphviz.escape(label), style="filled", fillcolor=record_color(index)
            )
            for position, stage_name in enumerate(record.stages):
                stage_id = f"r{index}_s{position}"
                cluster.node(
                    stage_id, label=graphviz.escape(stage_name), shape="box", fillcolor="white"
                )
                for artifact_index in record.stage_outputs[position]:
                    if not 0 <= artifact_index < len(artifacts):
                        continue
                    artifact = artifacts[artifact_index]
                    state = _artifact_state(artifact)
                    cluster.node(
                        f"a{artifact_index}",
                        label=graphviz.escape(str(artifact.name)),
                        shape="ellipse",
                        fillcolor=ARTIFACT_COLORS.get(state, "white"),
                        tooltip=graphviz.escape(state),
                    )
                    cluster.edge(stage_id, f"a{artifact_index}")
                    drawn.add(artifact_index)
    for index, record in enumerate(records):
        for position in range(len(record.stages)):
            for artifact_index in dict.fromkeys(record.stage_inputs[position]):
                if artifact_index in drawn:
                    dot.edge(f"a{artifact_index}", f"r{index}_s{position}")
    return dot


# ---------------------------------------------------------------------------- records


def record_html(record: Any) -> str:
    """A record as HTML: its parameter set and hash, its stages, and each artifact in its state
    with a preview, what the run did with it, and its cache file."""
    artifacts = getattr(record.manager, "artifacts", None) or []
    rows = []
    for name in list(dict.keys(record.state)):
        raw = dict.get(record.state, name)  # never resolves a Lazy handle
        index = record.state_artifact_reps.get(name)
        artifact = artifacts[index] if index is not None and 0 <= index < len(artifacts) else None
        if artifact is not None and getattr(artifact, "init_record", None) is None:
            artifact = None  # a map-pass entry, not one of this run's artifacts
        preview: str = preview_object(raw)
        if artifact is not None:
            metadata = getattr(artifact, "metadata", None) or {}
            # A Lazy's own preview describes the handle; the sidecar's describes the value.
            lazy_preview = metadata.get("preview") if isinstance(raw, Lazy) else None
            preview = str(lazy_preview or artifact.string)
        if isinstance(raw, Lazy):
            preview = f"{preview} (on disk, loaded when read)"
        rows.append(
            {
                "name": name,
                "preview": preview,
                "action": getattr(artifact, "action", "") if artifact is not None else "",
                "file": _artifact_file(artifact),
            }
        )
    params = record.params
    return render_template(
        "notebook/record.html",
        title=record.get_reference_name(),
        is_aggregate=record.is_aggregate,
        params_name=params.name if params is not None else "(none)",
        hash=record.get_hash(),
        stages=list(record.stages),
        artifacts=rows,
    )


def _artifact_file(artifact: Any) -> str:
    path = getattr(artifact, "file", None)
    return "(not cached)" if not path or path == "no file" else str(path)
