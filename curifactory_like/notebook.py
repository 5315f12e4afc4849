"""Jupyter support: showing a run in a notebook, and the notebook ``experiment run --notebook`` writes.

Display (each takes the ``ArtifactManager`` first; the manager's ``display_*`` methods delegate
here) returns an ``IPython.display.HTML`` object:

- ``display_info``: experiment, run, status, git commit and parameter sets;
- ``display_all_reportables`` / ``display_record_reportables`` / ``display_group_reportables`` /
  ``display_stage_reportables`` / ``display_reportable``: rendered reportables, with their
  files (figures, images) embedded as ``data:`` URIs so the notebook needs no file server;
- ``display_stage_graph``: the records' stages and artifacts as a graphviz SVG.

``record_html`` is the HTML behind ``Record._repr_html_``. ``write_experiment_notebook`` writes
``<path>.ipynb`` (and, on request, the same cells as a ``<path>.py`` script) that reruns a
finished experiment dry, so every artifact loads from the cache, and binds ``record_i`` /
``state_i`` for exploration.

All HTML comes from the autoescaping templates in ``templates/notebook/``. IPython and graphviz
are imported inside the functions that need them, never when this module is imported.
"""

from __future__ import annotations

import html
import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from .caching.atomic import atomic_open
from .caching.lazy import Lazy
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


# ---------------------------------------------------------------------------- experiment notebook


@dataclass
class _Cell:
    kind: str  # "markdown" or "code"
    lines: list[str] = field(default_factory=list)


def _md(value: Any) -> str:
    """``value`` as inline markdown text: one line, HTML and markdown markup escaped."""
    text = " ".join(str(value).split())
    text = html.escape(text, quote=False)
    for char in "\\`*_[]|~#":
        text = text.replace(char, "\\" + char)
    return text


def write_experiment_notebook(
    manager: Any,
    path: str,
    directory_change_back_depth: int = 2,
    use_global_cache: bool | None = None,
    errored: bool = False,
    suppress_global_warning: bool = False,
    leave_script: bool = False,
) -> str:
    """Write ``<path>.ipynb``: a notebook that reruns ``manager``'s experiment dry (every
    artifact loads from the cache) and binds ``record_i`` / ``state_i`` for each record.

    Args:
        manager: The ``ArtifactManager`` of the finished run.
        path: Output path without extension (e.g. ``notebooks/experiments/<reference>``).
        directory_change_back_depth: How many folders up from the notebook the project root
            is; the notebook starts with ``%cd`` there.
        use_global_cache: Whether the run used the project cache rather than a
            ``--store-full`` run folder (default: ``not manager.store_full``). The project
            cache may have changed since, which the notebook warns about.
        errored: The run failed; the notebook says so.
        suppress_global_warning: Leave out the project-cache warning.
        leave_script: Also write the cells as a ``<path>.py`` script (``# %%`` cells).

    Returns:
        The path of the written notebook.
    """
    if use_global_cache is None:
        use_global_cache = not manager.store_full
    cells = _notebook_cells(
        manager, directory_change_back_depth, use_global_cache, errored, suppress_global_warning
    )
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    notebook_path = f"{path}.ipynb"
    with atomic_open(notebook_path, "w", encoding="utf-8") as outfile:
        json.dump(_notebook_json(cells), outfile, indent=1, ensure_ascii=False)
        outfile.write("\n")
    if leave_script:
        with atomic_open(f"{path}.py", "w", encoding="utf-8") as outfile:
            outfile.write(_script_text(cells))
    logger.info("Wrote experiment notebook %s", notebook_path)
    return notebook_path


def _notebook_cells(
    manager: Any,
    depth: int,
    use_global_cache: bool,
    errored: bool,
    suppress_global_warning: bool,
) -> list[_Cell]:
    name = str(manager.experiment_name)
    commit = _md(manager.git_commit_hash) + (
        " (uncommitted changes)" if manager.git_workdir_dirty else ""
    )
    header = [
        f"# {_md(name)} - {_md(manager.experiment_run_number)}",
        "",
        f"Experiment name: **{_md(name)}**  ",
        f"Experiment run number: **{_md(manager.experiment_run_number)}**  ",
        f"Run timestamp: **{manager.run_timestamp.strftime('%m/%d/%Y %H:%M:%S')}**  ",
        f"Reference: **{_md(manager.get_reference_name())}**  ",
        f"Git commit: {commit}  ",
        f"Parameter files: {', '.join(_md(f) for f in manager.parameter_files) or '(none)'}",
        "",
        "**Parameter sets**:",
        "",
    ]
    for param_file, sets in manager.param_file_param_sets.items():
        header.append(f"* {_md(param_file)}")
        header.extend(f"    * {_md(set_name)} - {_md(hash_)}" for set_name, hash_ in sets)
    cells = [_Cell("markdown", header)]

    if use_global_cache and not suppress_global_warning:
        cells.append(
            _Cell(
                "markdown",
                [
                    "**Warning:** this run was not made with `--store-full`, so this notebook "
                    "reads the project-wide cache; experiment runs made since may have changed "
                    "the cached artifacts."
                ],
            )
        )
    if errored:
        cells.append(
            _Cell("markdown", ["**Warning:** this experiment run did not complete (it raised)."])
        )

    if use_global_cache:
        location = f"cache_path={str(manager.cache_path)!r}"
    else:
        run_folder = manager.get_run_output_path()
        location = (
            f"manager_cache_path={run_folder!r}, "
            f"cache_path={os.path.join(run_folder, 'artifacts')!r}"
        )
    param_files = [str(f) for f in manager.parameter_files]
    set_names = list(
        dict.fromkeys(str(n) for sets in manager.param_file_param_sets.values() for n, _ in sets)
    )
    selection = f", param_set_names={set_names!r}" if set_names else ""
    cells += [
        _Cell("code", ["%cd " + "/".join([".."] * depth)]),
        _Cell(
            "code",
            [
                "import logging",
                "",
                "from curifactory_like import ArtifactManager, experiment",
                "from curifactory_like import notebook as cf_notebook",
                "from curifactory_like.params import import_param_module",
                "",
                "logging.getLogger().setLevel(logging.INFO)",
            ],
        ),
        _Cell(
            "code",
            [
                "# Rerun the experiment dry: nothing is written, every stage loads from the cache.",
                "# Stages whose outputs no later stage needs are skipped; their cached outputs",
                "# load when read. Pass no_dag=True to run_experiment to load everything now,",
                "# and remove dry=True (both calls) if Lazy artifacts must be recomputed.",
                f"manager = ArtifactManager({name!r}, {location}, dry=True)",
                "results, manager = experiment.run_experiment(",
                f"    {name!r}, {param_files!r}{selection}, mngr=manager, dry=True, report=False",
                ")",
                "",
                "# The experiment's module (its stages) and the parameter files, to explore further.",
                f"experiment_module = experiment.import_experiment({name!r}, manager.config)",
                "param_modules = ["
                + ", ".join(f"import_param_module({f!r}, manager.config)" for f in param_files)
                + "]",
            ],
        ),
    ]
    for index, record in enumerate(manager.records):
        label = (
            "aggregate record" if record.params is None else f"parameter set {record.params.name!r}"
        )
        if record.is_aggregate and record.params is not None:
            label = f"aggregate record of {label}"
        cells.append(
            _Cell(
                "code",
                [
                    f"# {label}, stages: {', '.join(repr(s) for s in record.stages)}",
                    f"record_{index} = manager.records[{index}]",
                    f"state_{index} = record_{index}.state",
                    f"record_{index}",
                ],
            )
        )
    cells += [
        _Cell("markdown", ["## Reportables and stage graph"]),
        _Cell("code", ["cf_notebook.display_all_reportables(manager)"]),
        _Cell("code", ["cf_notebook.display_stage_graph(manager)"]),
    ]
    return cells


def _source_lines(lines: list[str]) -> list[str]:
    """Notebook-style source: every line but the last keeps its newline."""
    return [line + "\n" for line in lines[:-1]] + lines[-1:]


def _notebook_json(cells: list[_Cell]) -> dict[str, Any]:
    json_cells = []
    for index, cell in enumerate(cells):
        entry: dict[str, Any] = {
            "cell_type": cell.kind,
            "id": f"cell-{index}",
            "metadata": {},
            "source": _source_lines(cell.lines),
        }
        if cell.kind == "code":
            entry["execution_count"] = None
            entry["outputs"] = []
        json_cells.append(entry)
    return {
        "cells": json_cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _script_text(cells: list[_Cell]) -> str:
    """The cells in the percent format (``# %%``, ``# %% [markdown]``) that editors read."""
    chunks = []
    for cell in cells:
        if cell.kind == "markdown":
            body = [f"# {line}".rstrip() for line in cell.lines]
            chunks.append("\n".join(["# %% [markdown]", *body]))
        else:
            chunks.append("\n".join(["# %%", *cell.lines]))
    return "\n\n".join(chunks) + "\n"
