"""``Cacheable``: the base of every cacher (path rules, metadata sidecar, integrity check)."""

from __future__ import annotations

import json
import logging
import os
import stat
from datetime import datetime
from typing import Any

from .. import faults, hashing, utils
from .atomic import atomic_open, file_checksum, path_size
from .sidecars import read_sidecar, remember_written, sidecar_text

logger = logging.getLogger("curifactory_like.caching")

METADATA_SUFFIX = "_metadata.json"
SIDECAR_VERSION = 1
"""Version of the sidecar layout; a sidecar of another version is not trusted for integrity."""


class Cacheable:
    """Base class of cachers: where an artifact lives, how it is saved, loaded and checked.

    A cacher's path is ``[cache]/[subdir/][prefix]_[hash]_[stage]_[name][extension]`` unless
    ``path_override`` is given, which may use the fields ``{hash} {cache} {stage} {name}
    {params.X} {experiment} {artifact_filename}``. Subclasses implement ``save(obj)`` and
    ``load()``, write to ``self.get_path()`` (or ``get_dir()``), and should accept ``*args,
    **kwargs`` and pass them on, as in curifactory.

    Beside each artifact a ``_metadata.json`` sidecar records curifactory's metadata fields plus
    the artifact's size and checksum, so a torn or corrupted file is recomputed, never loaded.
    """

    def __init__(
        self,
        path_override: str | None = None,
        name: str | None = None,
        subdir: str | None = None,
        prefix: str | None = None,
        extension: str | None = None,
        record: Any = None,
        track: bool = True,
    ):
        self.path_override = path_override
        self.name = name
        self.subdir = subdir
        self.prefix = prefix
        self.extension = extension
        self.record: Any = None
        self.track = track
        self.cache_paths: list[str] = []
        """Every path this cacher handed out through ``get_path``."""
        self._metadata: dict[str, Any] | None = None
        self._metadata_pending = False
        self.extra_metadata: dict[str, Any] = {}
        """Cacher-specific metadata, stored under ``extra`` in the sidecar."""
        self.stage: str | None = None
        if record is not None:
            self.set_record(record)

    # ------------------------------------------------------------------ paths

    def _resolve_suffix(self, path: str, suffix: str | None, add_extension: bool = True) -> str:
        if suffix is None and self.extension and not path.endswith(self.extension) and add_extension:
            return self.extension
        return suffix or ""

    def _resolve_path_template(self, path: str) -> str:
        if self.record is None:
            return path
        manager = self.record.manager
        cache_path = manager.cache_path.rstrip("/")
        if self.name is None:
            self.name = "None"
        obj_name = self.name + self._resolve_suffix(self.name, None)
        artifact_filename = manager.get_artifact_filename(
            obj_name, self.record, stage_name=self.stage
        )
        return path.format(
            hash=self.record.get_hash(),
            cache=cache_path,
            stage=self.stage,
            name=self.name,
            params=self.record.params,
            experiment=manager.experiment_name,
            artifact_filename=artifact_filename,
        )

    def _redirected(self, path: str) -> str:
        """``path``, or where the manager's ``path_redirects`` moved it (a stored run folder)."""
        redirects = getattr(self.record.manager, "path_redirects", None) if self.record else None
        if not redirects:
            return path
        return str(redirects.get(os.path.normpath(path), path))

    def get_path(self, suffix: str | None = None) -> str:
        """The file path to save to / load from (``suffix`` replaces the extension)."""
        if self.path_override is not None:
            path = self._redirected(self._resolve_path_template(self.path_override))
            if self.extension and path.endswith(self.extension) and suffix is not None:
                path = path[: path.rindex(self.extension)]
            path = path + self._resolve_suffix(path, suffix, False)
            manager = self.record.manager if self.record is not None else None
            directory = os.path.dirname(path)
            if directory and manager is not None and not (manager.dry or manager.dry_cache):
                os.makedirs(directory, exist_ok=True)
        else:
            if self.record is None:
                raise RuntimeError(
                    "Trying to call get_path on a cacher with no record and no path_override. "
                    "Either pass a path directly into this cacher, or set cacher.record = some_record"
                )
            if self.name is None:
                raise RuntimeError(
                    "Trying to call get_path on a cacher with no object name and no "
                    "path_override. Either pass a path directly into this cacher, or set "
                    "cacher.name = 'objectname'"
                )
            key = self._path_key(suffix)
            memo = self.__dict__.get("_path_memo")
            if key is not None and memo is not None and memo.get(suffix, (None,))[0] == key:
                return str(memo[suffix][1])
            obj_name = self.name + self._resolve_suffix(self.name, suffix)
            path = self.record.get_path(
                obj_name,
                subdir=self.subdir,
                prefix=self.prefix,
                stage_name=self.stage,
                track=self.track,
            )
            if key is not None:
                self.__dict__.setdefault("_path_memo", {})[suffix] = (key, path)
        if path not in self.cache_paths:
            self.cache_paths.append(path)
        return path

    def _path_key(self, suffix: str | None) -> tuple[Any, ...] | None:
        """Everything a cache path depends on, to reuse it while none of it changes.

        ``None`` (compute every time) under ``--store-full``, where every ``get_path`` call
        also tracks the path for the run folder.
        """
        record = self.record
        manager = record.manager
        if manager.store_full:
            return None
        return (
            self.name,
            self.stage if self.stage is not None else manager.current_stage_name,
            self.subdir,
            self.prefix,
            self.extension,
            self.track,
            record.get_hash(),
            manager.cache_path,
            manager.prefix,
            manager.experiment_name,
        )

    def get_dir(self, suffix: str | None = None) -> str:
        """A directory path for multi-file artifacts (created if missing)."""
        suffix = suffix or ""
        if self.path_override is not None:
            path = self._redirected(self._resolve_path_template(self.path_override)) + suffix
        else:
            path = self.record.get_dir(
                (self.name or "None") + suffix,
                subdir=self.subdir,
                prefix=self.prefix,
                stage_name=self.stage,
                track=self.track,
            )
        os.makedirs(path, exist_ok=True)
        return path

    def set_record(self, record: Any) -> None:
        """Attach the record whose hash and parameters name this cacher's files.

        Outside the map pass this makes ``metadata`` hold the artifact's provenance (curifactory
        collects it here); it is collected when first read, so a call that is skipped or loaded
        (its metadata then comes from the sidecar) never pays for it.
        """
        self.record = record
        if not record.manager.map_mode:
            self._metadata_pending = True

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The artifact's metadata: collected for a write, or read back from the sidecar."""
        if self.__dict__.get("_metadata_pending"):
            self._metadata_pending = False
            self.collect_metadata()
        return self.__dict__.get("_metadata")

    @metadata.setter
    def metadata(self, value: dict[str, Any] | None) -> None:
        self._metadata_pending = False
        self._metadata = value

    # ------------------------------------------------------------------ metadata

    def collect_metadata(self) -> None:
        """Fill ``self.metadata`` with the artifact's provenance (curifactory's fields)."""
        if self.record is None:
            raise RuntimeError(
                "Cannot collect metadata from a cacher with no associated record. "
                "Assign cacher.record if metadata is needed."
            )
        record = self.record
        manager = record.manager
        self.metadata = {
            "artifact_generated": datetime.now().strftime(utils.TIMESTAMP_FORMAT),
            "params_hash": record.get_hash(),
            "params_name": record.params.name if record.params is not None else None,
            "record_name": record.get_reference_name(),
            "stage": self.stage or manager.current_stage_name,
            "artifact_name": self.name,
            "cacher_type": str(type(self)),
            "record_prior_stages": record.stages[:-1],
            "prior_records": [r.get_reference_name() for r in record.input_records],
            "params": _params_representation(record),
            "extra": self.extra_metadata,
            "manager_run_info": manager.artifact_run_info(),
            "sidecar_version": SIDECAR_VERSION,
        }

    def save_metadata(self) -> dict[str, Any] | None:
        """Write the sidecar (atomically), including the artifact's current size and checksum.

        Inside a stage call the runtime writes the sidecar itself once the artifact is saved;
        a cacher whose ``save`` also writes it (``PandasCacher``, as in curifactory) then skips
        that first, identical-but-incomplete write (``sidecar_deferred``).
        """
        if self.__dict__.get("sidecar_deferred"):
            return self.metadata
        metadata_path = self.get_path(METADATA_SUFFIX)
        faults.checkpoint("sidecar.write")
        if self.metadata is None:
            payload: dict[str, Any] = {"extra": self.extra_metadata}
        else:
            self.metadata["extra"].update(self.extra_metadata)
            self.metadata.update(self.integrity_fields())
            payload = self.metadata
        text = sidecar_text(payload)
        with atomic_open(metadata_path, "w", encoding="utf-8") as outfile:
            outfile.write(text)
            outfile.flush()
            remember_written(metadata_path, text, outfile, payload)
        faults.checkpoint("sidecar.written")
        return self.metadata

    def load_metadata(self) -> dict[str, Any] | None:
        """Read the sidecar into ``self.metadata`` / ``self.extra_metadata`` and return it."""
        metadata_path = self.get_path(METADATA_SUFFIX)
        try:
            metadata = read_sidecar(metadata_path)
        except json.JSONDecodeError:
            logger.error("Failed to read the JSON metadata file at %s", metadata_path)
            raise
        if metadata is not None:
            self.metadata = metadata
            self.extra_metadata = self.metadata.get("extra", {}) if self.metadata else {}
        return self.metadata

    # ------------------------------------------------------------------ integrity

    def integrity_fields(self) -> dict[str, Any]:
        """Size and checksum of the artifact at ``get_path()`` (empty when there is no file)."""
        path = self.get_path()
        if not os.path.exists(path):
            return {}
        return {"artifact_size": path_size(path), "artifact_checksum": file_checksum(path)}

    def integrity_problem(self, full: bool = True) -> str | None:
        """Why the cached artifact cannot be trusted, or ``None`` if it can.

        Checks that the sidecar exists and is readable, that the artifact's size matches, and
        with ``full=True`` its checksum. Sidecars without integrity fields (written by
        curifactory, or by a cacher's own ``save_metadata``) are trusted on size alone.
        """
        path = self.get_path()
        try:
            artifact_stat = os.stat(path)
        except OSError:
            return "artifact missing"
        metadata_path = self.get_path(METADATA_SUFFIX)
        try:
            metadata = read_sidecar(metadata_path)
        except (OSError, json.JSONDecodeError):
            return f"metadata sidecar {metadata_path} unreadable"
        if metadata is None:
            return f"metadata sidecar {metadata_path} missing"
        if not isinstance(metadata, dict):
            return f"metadata sidecar {metadata_path} malformed"
        expected_size = metadata.get("artifact_size")
        if expected_size is None:
            return None
        if metadata.get("sidecar_version") != SIDECAR_VERSION:
            return f"metadata sidecar {metadata_path} is from another version"
        size = path_size(path) if stat.S_ISDIR(artifact_stat.st_mode) else artifact_stat.st_size
        if size != expected_size:
            return f"size of {path} differs from its sidecar (torn or modified write)"
        if full and file_checksum(path) != metadata.get("artifact_checksum"):
            return f"checksum of {path} differs from its sidecar (corrupted or modified)"
        return None

    # ------------------------------------------------------------------ contract

    def check(self) -> bool:
        """``True`` if the artifact exists and its record does not ask to overwrite it."""
        path = self.get_path()
        if not os.path.exists(path):
            return False
        record = self.record
        if record is None:
            return True
        if record.params is None and record.is_aggregate and record.input_records:
            return not any(
                r.params is not None and r.params.overwrite for r in record.input_records
            )
        if record.params is not None:
            return not record.params.overwrite
        return False

    def load(self) -> Any:
        """Load the artifact (subclasses implement this)."""
        raise NotImplementedError("Cacheable class does not have a load function implemented")

    def save(self, obj: Any) -> Any:
        """Save ``obj`` (subclasses implement this)."""
        raise NotImplementedError("Cacheable class does not have a save function implemented")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, stage={self.stage!r})"


def _params_representation(record: Any) -> dict[str, Any] | None:
    """The record's parameter set as hashed (computed once per record when it can be)."""
    cached = getattr(record, "params_representation", None)
    if cached is not None:
        return cached()  # type: ignore[no-any-return]
    if record.params is None:
        return None
    return hashing.param_set_string_hash_representations(record.params)
