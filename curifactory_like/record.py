"""``Record``: one parameter set's state as it flows through stages.

Also the small value types a record's bookkeeping uses: ``CacheAwareDict`` (state that resolves
``Lazy`` handles on access), ``ArtifactRepresentation`` and ``MapArtifactRepresentation``
(curifactory's per-artifact entries in ``manager.artifacts``), and ``SkippedOutput`` (what a
skipped stage leaves in state for an output that was neither computed nor cached).
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from typing import Any

from . import hashing, utils
from .caching.lazy import Lazy

logger = logging.getLogger("curifactory_like.record")


class CacheAwareDict(dict):
    """A dict whose ``Lazy`` values are loaded when read (unless ``resolve`` is off)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.resolve = True

    def __getitem__(self, key: Any) -> Any:
        item = super().__getitem__(key)
        if isinstance(item, Lazy) and self.resolve and item.resolve:
            logger.debug("Auto-resolving lazy object '%s'...", key)
            value = item.load()
            if isinstance(item, CachedValue):
                super().__setitem__(key, value)
            return value
        return item

    def raw(self, key: Any, default: Any = None) -> Any:
        """The stored value without resolving a Lazy handle."""
        return super().get(key, default)


class CachedValue(Lazy):
    """A plain (non-Lazy) output left on disk by a skipped stage; loaded once on first read."""

    def __repr__(self) -> str:
        return f"CachedValue({self.name!r})"


class CarriedValue(Lazy):
    """An output without a cacher computed in a worker, carried over in a cloudpickle file."""

    def __init__(self, name: str, path: str):
        super().__init__(name)
        self.path = path

    def load(self) -> Any:
        import cloudpickle

        with open(self.path, "rb") as handle:
            return cloudpickle.load(handle)

    def __repr__(self) -> str:
        return f"CarriedValue({self.name!r})"


class SkippedOutput:
    """Placed in state for an output of a skipped stage that is neither computed nor cached."""

    def __init__(self, record: Record, stage_name: str, artifact_rep: Any = None):
        self.artifact = artifact_rep
        self.stage_name = stage_name
        self.dag_rep = (record.get_record_index(), stage_name)

    def __repr__(self) -> str:
        return f"SkippedOutput(stage={self.stage_name!r})"


class Record:
    """One parameter set's state (its artifacts) as it is passed through stages.

    Args:
        manager: the ArtifactManager of the run.
        param_set: the parameter set (``None`` for an aggregate-only record).
        hide: if ``True`` the record is not added to ``manager.records``.
    """

    def __init__(self, manager: Any, param_set: Any, hide: bool = False):
        self.manager = manager
        self.params = param_set
        self.state = CacheAwareDict()
        """Artifacts by name; stage inputs are read from here and outputs written here."""
        self.state_artifact_reps: dict[str, int] = {}
        """Artifact name -> index into ``manager.artifacts``."""
        self.output: Any = None
        """The value(s) returned by the last stage run with this record."""
        self.stages: list[str] = []
        self.stage_suppress_missing: list[bool] = []
        self.stage_kwargs_keys: list[list[str]] = []
        self.stage_inputs_names: list[list[str]] = []
        self.stage_inputs: list[list[int]] = []
        self.stage_outputs: list[list[int]] = []
        self.input_records: list[Record] = []
        self.is_aggregate = False
        self.combo_hash: str | None = None
        self.unstored_tracked_paths: list[dict[str, Any]] = []
        self.stored_paths: list[str] = []
        self.mapped_calls: list[Any] = []
        """Per stage (map pass only): how it was called, for running it by reference."""
        self.stage_cachers: list[Any] | None = None
        """The cachers of the stage running right now (so a stage can ask for its paths)."""
        self._index_hints: dict[bool, int] = {}
        """Last known position in ``manager.records`` (False) / the mapped records (True)."""
        self._params_representation: tuple[Any, dict[str, Any]] | None = None
        self.set_hash()
        if not hide:
            self._index_hints[False] = len(manager.records)
            manager.records.append(self)

    # ------------------------------------------------------------------ hashing

    def set_hash(self) -> None:
        """Compute the parameter set's hash (if not yet set) and register it with the manager."""
        if self.params is None:
            return
        if self.params.hash is None:
            self.params.hash = hashing.hash_param_set(self.params)
        register = getattr(self.manager, "register_param_set", None)
        if register is not None:
            register(self.params)

    def params_representation(self) -> dict[str, Any] | None:
        """The parameter set as hashed (``param_set_string_hash_representations``), computed
        once per hash; every artifact sidecar of the record carries it. Treat it as read-only."""
        if self.params is None:
            return None
        cached = self._params_representation
        if cached is None or cached[0] != self.params.hash:
            representation = hashing.param_set_string_hash_representations(self.params)
            cached = self._params_representation = (self.params.hash, representation)
        return cached[1]

    def get_hash(self) -> str:
        """The parameter set's hash, or the combo hash for an aggregate record."""
        if self.is_aggregate:
            return str(self.combo_hash)
        if self.params is not None:
            return str(self.params.hash)
        return "None"

    def set_aggregate(self, aggregate_records: list[Record]) -> None:
        """Mark this record as an aggregate over ``aggregate_records`` (its hash combines theirs)."""
        self.is_aggregate = True
        self.combo_hash = hashing.add_params_combo_hash(self, aggregate_records)
        register = getattr(self.manager, "register_combo_hash", None)
        if register is not None:
            register(self, aggregate_records)

    # ------------------------------------------------------------------ reporting

    def report(self, reportable: Any) -> None:
        """Add a reportable (table, figure, ...) to the run report under this record and stage."""
        reportable.record = self
        reportable.stage = self.stages[-1] if self.stages else ""
        qualified_name = "(Aggregate)_" if self.is_aggregate else ""
        if self.params is not None:
            qualified_name += f"{self.params.name}_"
        qualified_name += f"{reportable.stage}_"
        if getattr(reportable, "name", None) is None:
            qualified_name += str(len(self.manager.reportables))
        else:
            qualified_name += reportable.name
        reportable.qualified_name = qualified_name
        self.manager.reportables.append(reportable)

    # ------------------------------------------------------------------ copies

    def make_copy(self, param_set: Any = None, add_to_manager: bool = True) -> Record:
        """A new record with a deep copy of this one's state (and this one as its input)."""
        if param_set is None:
            param_set = self.params
        new_record = Record(self.manager, param_set, hide=not add_to_manager)
        new_record.input_records = [self]
        self.state.resolve = False
        try:
            new_record.state = CacheAwareDict(
                {key: copy.deepcopy(value) for key, value in dict.items(self.state)}
            )
        finally:
            self.state.resolve = True
        new_record.state_artifact_reps = copy.copy(self.state_artifact_reps)
        return new_record

    # ------------------------------------------------------------------ paths

    def get_path(
        self,
        obj_name: str,
        subdir: str | None = None,
        prefix: str | None = None,
        stage_name: str | None = None,
        track: bool = True,
    ) -> str:
        """A cache path ``[prefix]_[hash]_[stage]_[obj_name]`` for this record."""
        path = self.manager.get_artifact_path(
            obj_name=obj_name, record=self, subdir=subdir, prefix=prefix, stage_name=stage_name
        )
        if track:
            self.unstored_tracked_paths.append(
                {"obj_name": obj_name, "subdir": subdir, "prefix": prefix, "path": path}
            )
        return path

    def get_dir(
        self,
        dir_name_suffix: str,
        subdir: str | None = None,
        prefix: str | None = None,
        stage_name: str | None = None,
        track: bool = True,
    ) -> str:
        """Like ``get_path`` but creates the path as a directory."""
        dir_path = self.get_path(dir_name_suffix, subdir, prefix, stage_name, track)
        os.makedirs(dir_path, exist_ok=True)
        return dir_path

    def store_tracked_paths(self) -> None:
        """Copy the files this record's last stage touched into the --store-full run folder."""
        if self.manager.store_full and not self.manager.dry:
            for info in self.unstored_tracked_paths:
                path = info["path"]
                if path in self.stored_paths or not os.path.exists(path):
                    continue
                name = info["obj_name"] or os.path.basename(path)
                store_path = self.manager.get_artifact_path(
                    name, record=self, subdir=info["subdir"], prefix=info["prefix"], store=True
                )
                if os.path.isdir(path):
                    shutil.copytree(path, store_path, dirs_exist_ok=True)
                else:
                    shutil.copy2(path, store_path)
                self.stored_paths.append(path)
        self.unstored_tracked_paths = []

    # ------------------------------------------------------------------ naming

    def get_reference_name(self, map: bool = False) -> str:
        """``Record <index> (<param set name>)``, as in the stage map."""
        name = self.params.name if self.params is not None else "None"
        return f"Record {self.get_record_index(map)} ({name})"

    def get_record_index(self, map: bool = False) -> int:
        """This record's position in the manager's records (or the mapped records)."""
        records = self.manager.map.records if map else self.manager.records
        # the position found last time is checked first: O(1) while the list only grows
        hint = self._index_hints.get(map, -1)
        if 0 <= hint < len(records) and records[hint] is self:
            return hint
        for index, record in enumerate(records):
            if record is self:
                self._index_hints[map] = index
                return index
        return -1

    def __repr__(self) -> str:
        name = self.params.name if self.params is not None else None
        return f"Record(params={name!r}, stages={self.stages!r})"

    def _repr_html_(self) -> str:
        from .notebook import record_html

        return record_html(self)


class MapArtifactRepresentation:
    """An artifact seen during the map pass: where it would be and whether it is cached."""

    def __init__(
        self,
        record_index: int,
        stage_name: str,
        name: str,
        cached: bool,
        metadata: dict[str, Any] | None = None,
        cacher: Any = None,
    ):
        self.record_index = record_index
        self.stage_name = stage_name
        self.name = name
        self.cached = cached
        self.metadata = metadata
        self.cacher = cacher


class ArtifactRepresentation:
    """A one-line description of an artifact in a record, with its cache file and metadata."""

    def __init__(
        self,
        record: Record,
        name: Any,
        artifact: Any,
        metadata: dict[str, Any] | None = None,
        cacher: Any = None,
    ):
        self.init_record = record
        self.name = name
        self.string = utils.preview_object(artifact)
        self.cacher = cacher
        self.metadata = metadata
        if artifact is None and metadata is not None and "preview" in metadata:
            self.string = metadata["preview"]
        self.file = "no file"
        self.action = "computed"
        """What this run did with the artifact: computed, loaded or skipped."""

    def html_safe(self) -> str:
        """The preview text with HTML special characters escaped."""
        import html

        return html.escape(self.string)
