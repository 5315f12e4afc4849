"""The layout of a ``--store-full`` run folder and its manifest (reading and verifying it).

::

    data/runs/<reference>/
        artifacts/                  the run's own cache, same layout as data/cache
            _project/<path>         files a templated path or a file reference put elsewhere
                                    in the project directory
            _external/<id>/<name>   ... or outside the project directory
        report/                     the full run report
        params/param_sets.json      the parameter sets, readable
        params/param_sets.pkl       the same objects, cloudpickled (exact recreation)
        params/param_sets_by_value.pkl  ... with their classes too (used only when a parameter
                                    class can no longer be imported)
        git/commit.txt              full commit hash (and branch)
        git/uncommitted.patch       ``git diff HEAD`` at run time (never applied by anything)
        git/untracked.txt           untracked, not ignored files at run time
        requirements.txt            complete pip freeze
        environment.yml             ``conda env export --from-history`` (conda only)
        platform.json               interpreter, OS, machine, host, user
        log.txt                     the run's log
        manifest.json               every file above (path, size, checksum) and every artifact
        run_info.json               the registry row plus the manifest
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ..caching.atomic import file_checksum, path_size
from ..errors import RunFolderError

MANIFEST_FORMAT = "curifactory_like.run_folder/1"
MANIFEST_NAME = "manifest.json"
RUN_INFO_NAME = "run_info.json"
ARTIFACTS = "artifacts"
PROJECT_FILES = "_project"
EXTERNAL_FILES = "_external"
PARAMS_JSON = "params/param_sets.json"
PARAMS_PICKLE = "params/param_sets.pkl"
PARAMS_BY_VALUE = "params/param_sets_by_value.pkl"
PATCH = "git/uncommitted.patch"
UNTRACKED = "git/untracked.txt"
COMMIT = "git/commit.txt"
REQUIREMENTS = "requirements.txt"
PLATFORM = "platform.json"
LOG = "log.txt"
UNVERIFIED = frozenset({MANIFEST_NAME, RUN_INFO_NAME})
"""Files not listed in the manifest (they contain it)."""


_RECOPY_HINT = "copy the whole run folder again, or re-export it from its source"


def stored_location(path: str, cache_path: str, project_dir: str) -> str:
    """Where ``path`` (a file of the run) is kept in the run folder, relative to the folder.

    A path in the cache keeps its place below ``artifacts/``; one elsewhere in the project goes
    to ``artifacts/_project/<path relative to the project>``; any other to
    ``artifacts/_external/<digest of its directory>/<name>``.
    """
    target = os.path.abspath(path)
    for base, prefix in ((cache_path, ""), (project_dir, PROJECT_FILES)):
        root = os.path.abspath(base)
        if target.startswith(root + os.sep):
            relative = os.path.relpath(target, root)
            return "/".join(p for p in (ARTIFACTS, prefix, relative.replace(os.sep, "/")) if p)
    digest = hashlib.sha256(os.path.dirname(target).encode()).hexdigest()[:12]
    return f"{ARTIFACTS}/{EXTERNAL_FILES}/{digest}/{os.path.basename(target)}"


def combined_checksum(checksums: list[str]) -> str:
    """One checksum over several files' checksums, in order."""
    digest = hashlib.sha256()
    for checksum in checksums:
        digest.update(checksum.encode())
        digest.update(b"\0")
    return f"sha256:{digest.hexdigest()}"


def content_checksum(paths: list[str]) -> str:
    """One checksum over several files' contents, in order (a file reference's artifacts)."""
    return combined_checksum([file_checksum(path) for path in paths])


def file_entry(folder: str, relative: str) -> dict[str, Any]:
    """The manifest entry of one file of the run folder."""
    path = os.path.join(folder, relative)
    return {"path": relative, "size": path_size(path), "checksum": file_checksum(path)}


def list_files(folder: str) -> list[str]:
    """Every file below ``folder`` (relative, ``/``-separated, sorted), manifest and row excluded."""
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            relative = os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
            if relative not in UNVERIFIED:
                found.append(relative)
    return sorted(found)


def is_run_folder(path: str) -> bool:
    """Whether ``path`` looks like a store-full run folder (it has a manifest)."""
    return os.path.isfile(os.path.join(path, MANIFEST_NAME))


def read_manifest(folder: str) -> dict[str, Any]:
    """The manifest of a run folder, or RunFolderError saying what is wrong."""
    path = os.path.join(folder, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise RunFolderError(
            f"{folder} is not a complete --store-full run folder: {path} is missing",
            hint="only runs made with `experiment run EXP --store-full` can be reproduced, "
            "exported or imported",
        )
    try:
        with open(path, encoding="utf-8") as infile:
            manifest = json.load(infile)
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"the manifest {path} cannot be read ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise RunFolderError(f"{path} is not a {MANIFEST_FORMAT} manifest")
    return manifest


def verify_files(folder: str, manifest: dict[str, Any]) -> int:
    """Check every file of the manifest (present, size, checksum); return how many.

    Raises RunFolderError naming the first missing, truncated or modified file.
    """
    for entry in manifest.get("files", []):  # each check names the file and what was expected
        relative = str(entry["path"])
        path = os.path.join(folder, relative)
        if not os.path.exists(path):
            raise RunFolderError(
                f"run folder {folder}: {relative} is missing (the manifest expects "
                f"{entry['size']} bytes, {entry['checksum']})",
                hint=_RECOPY_HINT,
            )
        size = path_size(path)
        if size != entry["size"]:
            raise RunFolderError(
                f"run folder {folder}: {relative} is truncated or modified ({size} bytes, the "
                f"manifest expects {entry['size']} bytes)",
                hint=_RECOPY_HINT,
            )
        checksum = file_checksum(path)
        if checksum != entry["checksum"]:
            raise RunFolderError(
                f"run folder {folder}: {relative} is corrupted or modified (checksum "
                f"{checksum}, the manifest expects {entry['checksum']})",
                hint=_RECOPY_HINT,
            )
    return len(manifest.get("files", []))


def read_json(folder: str, relative: str) -> Any:
    """A JSON file of the run folder, or RunFolderError."""
    path = os.path.join(folder, relative)
    try:
        with open(path, encoding="utf-8") as infile:
            return json.load(infile)
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path} cannot be read ({type(exc).__name__}: {exc})") from exc


def read_text(folder: str, relative: str) -> str:
    """A text file of the run folder ("" when it does not exist)."""
    path = os.path.join(folder, relative)
    if not os.path.isfile(path):
        return ""
    with open(path, encoding="utf-8") as infile:
        return infile.read()
