"""``experiment reproduce``: rerun a stored run from its own folder (read only), or audit it.

A reproduction runs the experiment of the current project directory with the run's stored
parameter sets and the run folder's ``artifacts/`` as a read-only cache (``--dry-cache``), so
every cached stage is loaded or skipped and nothing is written into the folder. An audit
(``audit=True``) instead re-executes every stage into a scratch cache and compares each
artifact's checksum with the manifest.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunFolderError
from . import layout
from .audit import AuditResult, compare
from .environment import environment_differences

logger = logging.getLogger("curifactory_like.runstore")

ORIGINAL_REPORT = "original_report"
"""Folder of a reproduction's report holding a copy of the original run's report."""


@dataclass
class Reproduction:
    """What a reproduction (or audit) did and found."""

    folder: str
    original: str
    manager: Any = None
    warnings: list[str] = field(default_factory=list)
    pickles: list[str] = field(default_factory=list)
    verified: int = 0
    verified_after: int | None = None
    executed: list[dict[str, Any]] = field(default_factory=list)
    reused: int = 0
    missing_reportables: list[str] = field(default_factory=list)
    reportables_expected: int = 0
    audit: AuditResult | None = None
    folder_changed: bool = False
    """The run folder no longer matched its manifest after the reproduction."""

    @property
    def failed(self) -> bool:
        """The run failed, the folder changed, or the audit found a deterministic difference."""
        run_failed = self.manager is None or self.manager.status != "complete"
        audit_failed = self.audit is not None and self.audit.failed
        return run_failed or audit_failed or self.folder_changed


def resolve_run_folder(target: str, runs_path: str) -> str:
    """The run folder ``target`` names: a path to one, or a run reference (or its unique start)."""
    if os.path.isdir(target) and (
        layout.is_run_folder(target) or os.path.exists(os.path.join(target, "run_info.json"))
    ):
        return os.path.normpath(target)
    candidate = os.path.join(runs_path, target)
    if os.path.isdir(candidate):
        return os.path.normpath(candidate)
    matches = sorted(
        name for name in (os.listdir(runs_path) if os.path.isdir(runs_path) else [])
        if name.startswith(target)
    )
    exact = [name for name in matches if name.startswith(f"{target}_")]  # tiny_1, not tiny_10
    if len(matches) == 1 or len(exact) == 1:
        return os.path.join(runs_path, (exact or matches)[0])
    hint = (
        f"several runs start with {target!r}: {', '.join(matches[:10])}" if matches else
        "give a run reference listed by `experiment runs` whose run was made with --store-full, "
        "or the path to a run folder"
    )
    raise RunFolderError(f"no --store-full run folder {target!r} (looked in {runs_path})", hint=hint)


def reproduce(
    target: str,
    audit: bool = False,
    from_param_files: bool = False,
    quiet: bool = False,
    say: Callable[[str], None] = print,
) -> Reproduction:
    """Reproduce (or audit) the run ``target`` names; see the module docstring.

    ``say`` receives the notices a user must see (environment differences, pickles loaded).
    Raises RunFolderError for a missing, incomplete or corrupted run folder.
    """
    from .. import utils

    config = utils.get_configuration()
    folder = resolve_run_folder(target, str(config["runs_path"]))
    manifest = layout.read_manifest(folder)
    run_info = layout.read_json(folder, layout.RUN_INFO_NAME)
    run_info.pop("manifest", None)
    result = Reproduction(folder=folder, original=str(manifest["reference"]))
    result.verified = layout.verify_files(folder, manifest)
    say(f"Run folder {folder}: {result.verified} files match their manifest checksums")
    result.warnings = environment_differences(folder, run_info)
    for warning in result.warnings:
        say(f"WARNING: {warning}")
    param_sets = _param_sets(folder, run_info, config, from_param_files, result, say)
    scratch = tempfile.mkdtemp(prefix="cfl-audit-") if audit else None
    before = layout.list_files(folder)
    try:
        manager = _run(folder, manifest, run_info, param_sets, scratch, quiet, result, say)
        if audit:
            result.audit = compare(manifest, manager)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    result.manager = manager
    calls = manager.runtime.calls
    result.executed = [c for c in calls if c["action"] in ("computed", "failed")]
    result.reused = sum(c["action"] in ("loaded", "skipped") for c in calls)
    expected = [str(n) for n in manifest.get("reportables", [])]
    present = {str(r.qualified_name) for r in manager.reportables}
    result.reportables_expected = len(expected)
    result.missing_reportables = [name for name in expected if name not in present]
    if not audit:
        _check_untouched(folder, manifest, before, result, say)
    _finish(manager, result, manifest)
    return result


def _check_untouched(
    folder: str,
    manifest: dict[str, Any],
    before: list[str],
    result: Reproduction,
    say: Callable[[str], None],
) -> None:
    """Check the folder again after the run: a reproduction must not have written into it."""
    problems = []
    try:
        result.verified_after = layout.verify_files(folder, manifest)
    except RunFolderError as exc:
        problems.append(str(exc))
    added = sorted(set(layout.list_files(folder)) - set(before))
    if added:
        problems.append(
            f"{len(added)} file(s) appeared in the run folder during the reproduction (a stage "
            f"wrote them itself): {', '.join(added[:10])}"
        )
    for problem in problems:
        say(f"WARNING: {problem}")
        result.warnings.append(problem)
    result.folder_changed = bool(problems)


def _param_sets(
    folder: str,
    run_info: dict[str, Any],
    config: dict[str, Any],
    from_param_files: bool,
    result: Reproduction,
    say: Callable[[str], None],
) -> list[Any]:
    readable = layout.read_json(folder, layout.PARAMS_JSON)
    pickled = os.path.join(folder, layout.PARAMS_PICKLE)
    if os.path.isfile(pickled) and not from_param_files:
        import cloudpickle

        note = (
            f"Loading the pickled parameter sets from {pickled} (cloudpickle: unpickling can run "
            "code, so reproduce only run folders you trust; --from-param-files uses the current "
            "parameter files instead)"
        )
        say(note)
        result.pickles.append(note)
        try:
            with open(pickled, "rb") as infile:
                param_sets = list(cloudpickle.load(infile))
        except Exception as exc:
            param_sets = _by_value(folder, exc, result, say)
    else:
        param_sets = _from_param_files(readable, config, result, say)
    for param_set in param_sets:
        param_set.overwrite = False  # a reproduction never recomputes on purpose
    return param_sets


def _by_value(
    folder: str, problem: Exception, result: Reproduction, say: Callable[[str], None]
) -> list[Any]:
    """The parameter sets with their classes recreated from the pickle (class gone or moved)."""
    import cloudpickle

    path = os.path.join(folder, layout.PARAMS_BY_VALUE)
    if not os.path.isfile(path):
        raise RunFolderError(
            f"the stored parameter sets {os.path.join(folder, layout.PARAMS_PICKLE)} cannot be "
            f"loaded ({type(problem).__name__}: {problem})",
            hint="their classes must still be importable from the project; or use "
            "--from-param-files to rebuild them from the current parameter files",
        ) from problem
    note = (
        f"The parameter classes cannot be imported ({type(problem).__name__}: {problem}); "
        f"loading the parameter sets with their pickled classes from {path}"
    )
    say(f"WARNING: {note}")
    result.warnings.append(note)
    result.pickles.append(f"Loaded the pickled parameter sets and their classes from {path}")
    try:
        with open(path, "rb") as infile:
            return list(cloudpickle.load(infile))
    except Exception as exc:
        raise RunFolderError(
            f"the stored parameter sets {path} cannot be loaded ({type(exc).__name__}: {exc})",
            hint="use --from-param-files to rebuild them from the current parameter files",
        ) from exc


def _from_param_files(
    readable: dict[str, Any], config: dict[str, Any], result: Reproduction,
    say: Callable[[str], None],
) -> list[Any]:
    from ..params import collect_parameter_sets

    stored = readable.get("param_sets", [])
    names = [entry["name"] for entry in stored]
    say(f"Rebuilding the parameter sets {', '.join(names)} from the parameter files "
        f"{', '.join(readable.get('param_files') or [])}")
    param_sets, _ = collect_parameter_sets(list(readable.get("param_files") or []), config,
                                           names=names or None)
    stored_hashes = {entry["name"]: entry["hash"] for entry in stored}
    for param_set in param_sets:
        if stored_hashes.get(param_set.name) not in (None, param_set.hash):
            warning = (
                f"parameter set {param_set.name!r} now hashes to {param_set.hash}, the run used "
                f"{stored_hashes[param_set.name]}: its parameter file changed, so its artifacts "
                "are not in the run folder"
            )
            say(f"WARNING: {warning}")
            result.warnings.append(warning)
    return param_sets


def _pickle_notice(folder: str, manifest: dict[str, Any]) -> str | None:
    pickled = [entry["path"] for entry in manifest.get("artifacts", []) if entry.get("pickled")]
    if not pickled:
        return None
    shown = "\n".join(f"  {os.path.join(folder, path)}" for path in pickled)
    return (
        f"{len(pickled)} pickled artifact(s) may be loaded from {os.path.join(folder, 'artifacts')} "
        f"(unpickling can run code; reproduce only run folders you trust):\n{shown}"
    )


def _run(
    folder: str,
    manifest: dict[str, Any],
    run_info: dict[str, Any],
    param_sets: list[Any],
    scratch: str | None,
    quiet: bool,
    result: Reproduction,
    say: Callable[[str], None],
) -> Any:
    from .. import hashing
    from ..experiment import run_experiment
    from ..manager import ArtifactManager

    options = manifest.get("run_options", {})
    experiment = str(manifest["experiment_name"])
    if scratch is None:
        cache = os.path.join(folder, layout.ARTIFACTS)
        redirects = {k: os.path.join(folder, v) for k, v in manifest.get("redirects", {}).items()}
        notice = _pickle_notice(folder, manifest)
        if notice:
            say(notice)
            result.pickles.append(notice)
    else:
        cache = scratch
        prefix = layout.ARTIFACTS + "/"
        redirects = {
            k: os.path.join(scratch, v[len(prefix):] if v.startswith(prefix) else v)
            for k, v in manifest.get("redirects", {}).items()
        }
        say(f"Audit: re-executing every stage into the scratch cache {scratch}")
    run_line = f"experiment reproduce {folder}" + (" --audit" if scratch else "")
    manager = ArtifactManager(
        experiment,
        dry_cache=scratch is None,
        prefix=options.get("prefix"),
        run_line=run_line,
        lazy=bool(options.get("lazy")),
        ignore_lazy=bool(options.get("ignore_lazy")),
        cache_path=cache,
        status_override=None,
        notes=f"reproduction of {result.original}" + (" (audit)" if scratch else ""),
    )
    hashing.set_hash_mode(options.get("hash_mode") or "v1")
    manager.path_redirects = _moved_project(redirects, str(options.get("project_dir") or ""))  # type: ignore[attr-defined]
    manager.parameter_files = list(run_info.get("param_files") or [])
    manager.param_file_param_sets = {
        name: [tuple(pair) for pair in pairs] for name, pairs in (run_info.get("params") or {}).items()
    }
    run_experiment(
        experiment, mngr=manager, param_sets=param_sets, log=True, quiet=quiet, plain=True,
        report=False, run_string=run_line,
    )
    return manager


def _moved_project(redirects: dict[str, str], project_dir: str) -> dict[str, str]:
    """The redirects by normalised path, plus, for absolute paths in the run's project
    directory, the same paths in this one (the project was moved or is on another machine)."""
    moved = {os.path.normpath(k): v for k, v in redirects.items()}
    here = os.getcwd()
    if project_dir and os.path.normpath(project_dir) != here:
        for key, value in list(moved.items()):
            if os.path.isabs(key) and key.startswith(os.path.normpath(project_dir) + os.sep):
                moved.setdefault(os.path.join(here, os.path.relpath(key, project_dir)), value)
    return moved


def _finish(manager: Any, result: Reproduction, manifest: dict[str, Any]) -> None:
    """Record the reproduction in the registry and write its report (linking the original)."""
    original_report = os.path.join(result.folder, "report")
    has_report = os.path.isfile(os.path.join(original_report, "index.html"))
    context = {
        "original": result.original,
        "folder": os.path.abspath(result.folder),
        # a copy inside the new report, so the link works when the reports are served
        "original_report": f"{ORIGINAL_REPORT}/index.html" if has_report else None,
        "verified": result.verified,
        "verified_after": result.verified_after,
        "folder_changed": result.folder_changed,
        "executed": result.executed,
        "reused": result.reused,
        "reportables_expected": result.reportables_expected,
        "reportables_found": result.reportables_expected - len(result.missing_reportables),
        "missing_reportables": result.missing_reportables,
        "pickles": result.pickles,
        "warnings": result.warnings,
        "audit": result.audit,
    }
    manager.reproduction = context
    fields: dict[str, Any] = {"reproduced_from": result.original}
    if result.audit is not None:
        fields["audit"] = result.audit.verdict
    with manager._run_store() as store:
        store.update_run(manager.get_reference_name(), **fields)
    path = manager.generate_report()
    if has_report and path:
        shutil.copytree(original_report, os.path.join(os.path.dirname(path), ORIGINAL_REPORT),
                        dirs_exist_ok=True)
