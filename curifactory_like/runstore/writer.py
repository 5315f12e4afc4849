"""Completing a ``--store-full`` run folder when the run ends (see ``layout`` for the layout).

During the run, files a stage writes through ``record.get_path`` and the reportables folders
are copied into ``artifacts/`` as they are made (``Record.store_tracked_paths``). At the end
this module adds what that misses, so the folder stands on its own:

* files of cachers with a templated ``path_override`` (anywhere, not only in the cache);
* every file a ``FileReferenceCacher`` (or ``PathRef``) refers to; the stored reference file is
  rewritten to name them relative to itself, and its stored sidecar says so;
* the parameter sets, as readable JSON and as cloudpickle;
* the git state (full commit, uncommitted diff as a patch, untracked files), the platform and
  the log;
* ``manifest.json``: every file with its size and checksum, and every artifact of the run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import warnings
from typing import Any

from ..caching.atomic import atomic_open, file_checksum, path_size
from ..caching.base import METADATA_SUFFIX
from ..caching.builtin import RELATIVE_REFERENCES, FileReferenceCacher, PandasCacher, PickleCacher
from ..errors import CurifactoryWarning
from . import layout

logger = logging.getLogger("curifactory_like.runstore")

PICKLE_EXTENSIONS = (".pkl", ".pickle")


def complete_run_folder(manager: Any) -> str:
    """Make ``manager``'s run folder self-contained and write its manifest; return the folder."""
    folder = manager.get_run_output_path()
    project = os.getcwd()
    cache = str(manager.cache_path)
    nondeterministic = nondeterministic_stages(manager)
    artifacts: list[dict[str, Any]] = []
    redirects: dict[str, str] = {}
    seen: set[str] = set()
    for artifact in manager.artifacts:
        cacher = getattr(artifact, "cacher", None)
        if cacher is None or cacher.record is None:
            continue
        main = artifact.file if artifact.file not in (None, "no file") else cacher.get_path()
        if main in seen or not os.path.exists(main):
            continue
        seen.add(main)
        for path in {*cacher.cache_paths, main, cacher.get_path(METADATA_SUFFIX)}:
            if os.path.exists(path):
                _copy(path, folder, layout.stored_location(path, cache, project))
        stored = layout.stored_location(main, cache, project)
        if cacher.path_override is not None:
            redirects[os.path.normpath(main)] = stored
        entry = {
            "stage": str((artifact.metadata or {}).get("stage") or cacher.stage or ""),
            "name": str(artifact.name),
            "record_hash": artifact.init_record.get_hash(),
            "params_name": getattr(artifact.init_record.params, "name", None),
            "path": stored,
            "cacher": type(cacher).__name__,
            "action": getattr(artifact, "action", ""),
            "pickled": _is_pickled(cacher, main),
            "nondeterministic": nondeterministic.get(cacher.stage or "", False),
        }
        if isinstance(cacher, FileReferenceCacher):
            try:
                entry.update(_store_references(cacher, main, folder, cache, project))
            except (OSError, ValueError) as exc:
                warnings.warn(
                    f"the files of reference {cacher.name!r} (stage '{cacher.stage}') could not "
                    f"be stored in the run folder ({type(exc).__name__}: {exc}); a reproduction "
                    "will recompute that stage",
                    CurifactoryWarning,
                    stacklevel=2,
                )
        artifacts.append(entry)
    _write_params(manager, folder)
    _write_git(manager, folder)
    _write_environment(manager, folder)
    manifest = {
        "format": layout.MANIFEST_FORMAT,
        "reference": manager.get_reference_name(),
        "experiment_name": manager.experiment_name,
        "run_options": {
            "prefix": manager.prefix,
            "lazy": bool(manager.lazy),
            "ignore_lazy": bool(manager.ignore_lazy),
            "hash_mode": manager.config.get("hash_mode", "v1"),
            "cache_path": cache,
            "project_dir": project,
        },
        "reportables": [str(r.qualified_name) for r in manager.reportables],
        "redirects": redirects,
        "artifacts": artifacts,
        "files": [layout.file_entry(folder, f) for f in layout.list_files(folder)],
    }
    _fill_checksums(folder, artifacts, manifest["files"])
    with atomic_open(os.path.join(folder, layout.MANIFEST_NAME), "w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=2, default=str)
    _write_run_info(manager, folder, manifest)
    logger.info(
        "Run folder %s complete: %d files, %d artifacts", folder, len(manifest["files"]),
        len(artifacts),
    )
    return str(folder)


def nondeterministic_stages(manager: Any) -> dict[str, bool]:
    """``{stage name: nondeterministic=...}`` for the stages of the manager's mapped DAG."""
    dag = getattr(manager, "dag", None)
    flags: dict[str, bool] = {}
    for record in getattr(dag, "records", None) or []:
        for detail in getattr(record, "mapped_calls", []):
            definition = detail.definition
            flags[definition.name] = bool(getattr(definition, "nondeterministic", False))
    return flags


def _is_pickled(cacher: Any, path: str) -> bool:
    if isinstance(cacher, PickleCacher) or path.endswith(PICKLE_EXTENSIONS):
        return True
    return isinstance(cacher, PandasCacher) and cacher.format.name == "pickle"


def _copy(source: str, folder: str, relative: str) -> str:
    target = os.path.join(folder, relative)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.isdir(source):
        shutil.copytree(source, target, dirs_exist_ok=True)
    elif not _same_file(source, target):
        shutil.copy2(source, target)
    return target


def _same_file(source: str, target: str) -> bool:
    """Whether ``target`` is already a copy of ``source`` (``copy2`` keeps size and mtime)."""
    if not os.path.exists(target):
        return False
    a, b = os.stat(source), os.stat(target)
    return a.st_size == b.st_size and int(a.st_mtime) == int(b.st_mtime)


def _fill_checksums(folder: str, artifacts: list[dict[str, Any]], files: list[dict[str, Any]]) -> None:
    """Each artifact's content checksum, from the files' checksums where there is one."""
    known = {entry["path"]: entry["checksum"] for entry in files}

    def checksum(relative: str) -> str:
        return known.get(relative) or file_checksum(os.path.join(folder, relative))

    for entry in artifacts:
        if "references" in entry:
            entry["checksum"] = layout.combined_checksum([checksum(r) for r in entry["references"]])
        else:
            entry["checksum"] = checksum(entry["path"])


def _store_references(
    cacher: Any, main: str, folder: str, cache: str, project: str
) -> dict[str, Any]:
    """Copy the files a reference names and rewrite the stored reference relative to itself."""
    value = cacher.load()
    paths = value if isinstance(value, list) else [value]
    stored_json = os.path.join(folder, layout.stored_location(main, cache, project))
    relative_paths = []
    stored_paths = []
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"file reference {cacher.name!r} names {path}, which is gone")
        location = layout.stored_location(path, cache, project)
        _copy(path, folder, location)
        stored_paths.append(location)
        target = os.path.join(folder, location)
        relative_paths.append(os.path.relpath(target, os.path.dirname(stored_json)))
    rewritten: Any = relative_paths if isinstance(value, list) else relative_paths[0]
    with atomic_open(stored_json, "w", encoding="utf-8") as out:
        json.dump(rewritten, out, indent=4)
    sidecar = stored_json[: -len(".json")] + METADATA_SUFFIX
    metadata: dict[str, Any] = {}
    if os.path.exists(sidecar):
        with open(sidecar, encoding="utf-8") as infile:
            metadata = json.load(infile)
    metadata.setdefault("extra", {})[RELATIVE_REFERENCES] = True
    if "artifact_size" in metadata:
        metadata["artifact_size"] = path_size(stored_json)
        metadata["artifact_checksum"] = file_checksum(stored_json)
    with atomic_open(sidecar, "w", encoding="utf-8") as out:
        json.dump(metadata, out, indent=2, default=str)
    return {
        "references": stored_paths,
    }


def _param_sets(manager: Any) -> list[Any]:
    given = getattr(manager, "run_param_sets", None)
    if given is not None:
        return list(given)
    found: dict[str, Any] = {}
    for record in [*(getattr(manager.dag, "records", None) or []), *manager.records]:
        if record.params is not None:
            found.setdefault(record.params.hash, record.params)
    return list(found.values())


def _readable(param_set: Any) -> dict[str, Any]:
    from .. import hashing

    cls = type(param_set)
    fields = (
        {f.name: getattr(param_set, f.name) for f in dataclasses.fields(param_set)}
        if dataclasses.is_dataclass(param_set)
        else dict(vars(param_set))
    )
    fields.pop("hash_representations", None)
    try:
        representation = hashing.param_set_string_hash_representations(param_set)
    except Exception as exc:  # shown as far as possible; the pickle is the exact form
        representation = {"(not shown)": f"{type(exc).__name__}: {exc}"}
    return {
        "name": param_set.name,
        "hash": param_set.hash,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "values": json.loads(json.dumps(fields, default=repr)),
        "hash_representation": json.loads(json.dumps(representation, default=str)),
    }


def _write_params(manager: Any, folder: str) -> None:
    import cloudpickle

    param_sets = _param_sets(manager)
    os.makedirs(os.path.join(folder, "params"), exist_ok=True)
    readable = {
        "param_files": list(manager.parameter_files),
        "by_file": manager.param_file_param_sets,
        "param_sets": [_readable(p) for p in param_sets],
    }
    with atomic_open(os.path.join(folder, layout.PARAMS_JSON), "w", encoding="utf-8") as out:
        json.dump(readable, out, indent=2, default=str)
    try:
        data = cloudpickle.dumps(param_sets)
    except Exception as exc:
        warnings.warn(
            f"the parameter sets of {manager.get_reference_name()} cannot be pickled "
            f"({type(exc).__name__}: {exc}); `experiment reproduce` will rebuild them from the "
            "parameter files instead",
            CurifactoryWarning,
            stacklevel=2,
        )
        return
    with atomic_open(os.path.join(folder, layout.PARAMS_PICKLE), "wb") as out:
        out.write(data)
    by_value = _pickle_by_value(param_sets)
    if by_value is not None:
        with atomic_open(os.path.join(folder, layout.PARAMS_BY_VALUE), "wb") as out:
            out.write(by_value)


def _pickle_by_value(param_sets: list[Any]) -> bytes | None:
    """The parameter sets with their classes' modules pickled by value (a fallback for when a
    parameter class can no longer be imported); None if that cannot be pickled."""
    import sys

    import cloudpickle

    modules = {
        type(p).__module__ for p in param_sets
        if not type(p).__module__.startswith(("curifactory_like", "builtins"))
    }
    registered = []
    try:
        for name in modules:
            module = sys.modules.get(name)
            if module is not None:
                cloudpickle.register_pickle_by_value(module)
                registered.append(module)
        return bytes(cloudpickle.dumps(param_sets))
    except Exception as exc:
        logger.debug("parameter sets cannot be pickled by value: %s", exc)
        return None
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)


def _write_text(folder: str, relative: str, text: str) -> None:
    path = os.path.join(folder, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_open(path, "w", encoding="utf-8") as out:
        out.write(text)


def _write_git(manager: Any, folder: str) -> None:
    git = manager.git_info
    commit = getattr(git, "commit", None) or ""
    branch = getattr(git, "branch", None) or ""
    _write_text(folder, layout.COMMIT, f"{commit}\n{branch}\n" if commit else "")
    _write_text(folder, layout.PATCH, str(getattr(git, "diff", "") or ""))
    untracked = list(getattr(git, "untracked", ()) or ())
    _write_text(folder, layout.UNTRACKED, "".join(f"{name}\n" for name in untracked))


def _write_environment(manager: Any, folder: str) -> None:
    from .. import provenance

    if not os.path.exists(os.path.join(folder, layout.REQUIREMENTS)):
        manager.write_run_env_output()
    with atomic_open(os.path.join(folder, layout.PLATFORM), "w", encoding="utf-8") as out:
        json.dump(provenance.platform_info(), out, indent=2)
    log_path = getattr(manager, "log_path", None)
    if log_path and os.path.isfile(log_path):
        shutil.copyfile(log_path, os.path.join(folder, layout.LOG))


def _write_run_info(manager: Any, folder: str, manifest: dict[str, Any]) -> None:
    summary = {
        "run_folder_files": len(manifest["files"]),
        "run_folder_bytes": sum(int(f["size"]) for f in manifest["files"]),
    }
    row = dict(manager.run_info or {})
    if manager.stored and not manager.dry:
        with manager._run_store() as store:
            row = store.update_run(manager.get_reference_name(), **summary) or row
        manager.run_info = row
    # the final status is written to the registry after the folder is complete (a run killed
    # before that stays `incomplete` there); the folder records the outcome it completes
    row["status"] = manager.status
    manager.run_folder_manifest = manifest
    if manager.status == "error":
        row["error"] = manager.error
    with atomic_open(os.path.join(folder, layout.RUN_INFO_NAME), "w", encoding="utf-8") as out:
        json.dump({**row, "manifest": manifest}, out, indent=4, default=str)
