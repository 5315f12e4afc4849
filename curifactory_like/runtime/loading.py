"""Skipping and loading a stage call: outputs left on disk behind lazy handles, or loaded from
the cache after their integrity (and, without a plan, code-change) checks."""

from __future__ import annotations

import logging
import warnings
from typing import Any

from ..caching.artifact_lock import artifact_lock
from ..caching.lazy import Lazy
from ..errors import CacheIntegrityWarning
from ..record import ArtifactRepresentation, CachedValue, CarriedValue, SkippedOutput
from .base import StageRuntimeBase
from .call_context import CallContext

logger = logging.getLogger("curifactory_like.runtime")


class LoadingMixin(StageRuntimeBase):
    """Skip or load a call's outputs instead of computing them."""

    def _skip(self, context: CallContext) -> None:
        """Leave outputs on disk: lazy handles for cached ones, SkippedOutput for the rest."""
        record = context.record
        logger.debug("DAG-indicated stage skip '%s'.", context.name)
        mapped = self._mapped_outputs(context)
        first_metadata = None
        for index, output in enumerate(context.outputs):
            cacher = context.cachers[index] if context.cachers is not None else None
            value: Any = None
            metadata = None
            seen = mapped[index] if mapped is not None and index < len(mapped) else None
            cached = False
            if cacher is not None and seen is not None and seen.cached and (
                seen.path == cacher.get_path()
            ):
                # the map pass found it cached and checked it moments ago: no second look
                metadata = cacher.metadata = seen.metadata
                cacher.extra_metadata = (metadata or {}).get("extra", {})
                cached = True
            elif cacher is not None and cacher.check():
                try:
                    metadata = cacher.load_metadata()
                except (OSError, ValueError):  # damaged sidecar: never loaded unverified
                    metadata = None
                cached = True
            if cached:
                handle = output if isinstance(output, Lazy) else CachedValue(str(output))
                value = handle.bind(cacher)
            if index == 0:
                first_metadata = metadata
            artifact = ArtifactRepresentation(record, output, None, metadata=metadata, cacher=cacher)
            carried = self._carried_path(context, str(output)) if value is None else None
            if value is not None and cacher is not None:
                artifact.file = cacher.get_path()
            elif carried is not None:
                value = CarriedValue(str(output), carried)
            else:
                value = SkippedOutput(record, context.name, artifact)
            artifact.action = "skipped"
            self._register_artifact(record, output, artifact)
            record.state[str(output)] = value
        self._restore_reportables(context, first_metadata)
        record.store_tracked_paths()

    def _mapped_outputs(self, context: CallContext) -> list[Any] | None:
        """The map pass's view of this call's outputs (``MapArtifactRepresentation``s)."""
        dag = getattr(self.manager, "map", None)
        if dag is None or dag.plan is None:
            return None
        index = context.record.get_record_index()
        if index >= len(dag.records):
            return None
        mapped_record = dag.records[index]
        if context.position >= len(mapped_record.stage_outputs):
            return None
        if mapped_record.stages[context.position] != context.name:
            return None
        return [dag.artifacts[i] for i in mapped_record.stage_outputs[context.position]]

    def _restore_reportables(self, context: CallContext, metadata: dict[str, Any] | None) -> None:
        """Re-add the stage's cached reportables, unless its sidecar says it reported none."""
        if isinstance(metadata, dict) and metadata.get("stage_reportables") == 0:
            return
        self.manager.restore_cached_reportables(context)

    def _carried_path(self, context: CallContext, output: str) -> str | None:
        outcome = self.scheduled.get((context.record.get_record_index(), context.position))
        if outcome is None:
            return None
        return outcome.carried.get(output)

    def _load(self, context: CallContext) -> bool:
        """Load every cached output into state; ``False`` if any is unusable (then compute)."""
        cachers = context.cachers
        if not cachers:
            return False
        record = context.record
        if not all(cacher.check() for cacher in cachers):
            return False  # nothing to read, so no lock to take: the call is computed
        # The shared lock of every output, from the check to the last read: a process rewriting
        # one of them (another run that also planned to compute it) finishes the file and its
        # sidecar first. A built-in cacher replaces its file atomically, but a user's cacher may
        # write in place, and a read in the middle of that would see a truncated file.
        paths = [cacher.get_path() for cacher in cachers]
        with artifact_lock(self.manager.manager_cache_path, paths, exclusive=False):
            for cacher in cachers:
                problem = cacher.integrity_problem(full=True) if cacher.check() else "missing"
                if problem is not None:
                    if problem != "missing":
                        warnings.warn(
                            f"stage '{context.name}': cached artifact {cacher.get_path()} failed "
                            f"its integrity check ({problem}); recomputing it",
                            CacheIntegrityWarning,
                            stacklevel=4,
                        )
                    return False
            if self._changed_in_live_mode(context):
                return False
            values = []
            for output, cacher in zip(context.outputs, cachers, strict=True):
                cacher.load_metadata()
                value = output.bind(cacher) if isinstance(output, Lazy) else cacher.load()
                values.append(value)
        for output, cacher, value in zip(context.outputs, cachers, values, strict=True):
            record.state[str(output)] = value
            artifact = ArtifactRepresentation(
                record, output, value, metadata=cacher.metadata, cacher=cacher
            )
            artifact.file = cacher.get_path()
            artifact.action = "loaded"
            self._register_artifact(record, output, artifact)
        record.output = values[0] if len(values) == 1 else tuple(values)
        logger.info("Stage %s loaded from cache", context.name)
        self._restore_reportables(context, cachers[0].metadata)
        record.store_tracked_paths()
        return True

    def _changed_in_live_mode(self, context: CallContext) -> bool:
        """Without a plan (``--no-dag``, notebooks), check the code fingerprint here."""
        dag = getattr(self.manager, "map", None)
        if self.forced_decision is not None or (dag is not None and dag.plan is not None):
            return False  # the map pass already compared it
        if getattr(self.manager, "code_changes", "rerun") == "ignore":
            return False
        for cacher in context.cachers or []:
            change = self._code_change(context, cacher.load_metadata())
            if change is None:
                continue
            if getattr(self.manager, "code_changes", "rerun") == "rerun":
                logger.info("Stage %s: %s; recomputing", context.name, change)
                return True
            logger.warning("Stage %s: %s; loading the cached artifact anyway (code_changes="
                           "warn)", context.name, change)
            return False
        return False
