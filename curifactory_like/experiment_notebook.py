"""The notebook ``experiment run --notebook`` writes: ``write_experiment_notebook`` writes
``<path>.ipynb`` (and, on request, the same cells as a ``<path>.py`` script) that reruns a
finished experiment dry, so every artifact loads from the cache, and binds ``record_i`` /
``state_i`` for exploration. ``notebook`` re-exports it (curifactory's module path)."""

from __future__ import annotations

import html
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from .caching.atomic import atomic_open

__all__ = ["write_experiment_notebook"]

logger = logging.getLogger("curifactory_like.notebook")


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
