"""Giving back the memory of outputs no later stage call reads.

A run keeps every record's state until it ends, so a cold run over many records holds every
intermediate DataFrame and model at once (curifactory does too: 306 MB at N=1000 on the
benchmark workload, and a run whose intermediates do not fit in memory cannot run at all). The
plan knows, for every cached output, the last call in ``run()`` that reads it
(``DAG.last_readers``). Once that call is done the value is already on disk, so its state entry
is replaced by a ``CachedValue`` handle bound to the cacher that wrote it: reading
``record.state[name]`` afterwards loads it again (verified against its sidecar), as for a
skipped stage.

Only ``experiment`` command runs do this (``gcpolicy.batch_mode``): there nothing reads the state
after ``run()`` returns. In a notebook or script, records keep their values in memory as in
curifactory. Values without a cacher, lazy handles, and anything a dry run did not write stay
as they are.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..caching.lazy import Lazy
from ..record import CachedValue
from .base import StageRuntimeBase

logger = logging.getLogger("curifactory_like.runtime")


class ReleasingMixin(StageRuntimeBase):
    """Replaces values no later call reads by handles on their cache files."""

    def _release_consumed(self, record_index: int, position: int) -> None:
        manager = self.manager
        if not self.release_consumed or manager.dry or manager.dry_cache:
            return
        dag = getattr(manager, "map", None)
        if dag is None or not dag.releases:
            return
        for owner_index, name, producer_position in dag.releases.get((record_index, position), ()):
            if owner_index < len(manager.records):
                self._release(manager.records[owner_index], name, producer_position)

    def _release(self, record: Any, name: str, producer_position: int) -> None:
        artifact_index = record.state_artifact_reps.get(name)
        if artifact_index is None or producer_position >= len(record.stage_outputs):
            return
        if artifact_index not in record.stage_outputs[producer_position]:
            return  # a later stage wrote another value under the same name
        value = record.state.raw(name)
        if value is None or isinstance(value, Lazy):
            return
        artifact = self.manager.artifacts[artifact_index]
        cacher = getattr(artifact, "cacher", None)
        if cacher is None or artifact.file == "no file" or not os.path.exists(artifact.file):
            return
        handle = CachedValue(name).bind(cacher)
        record.state[name] = handle
        logger.debug("Released '%s' of %s (read back from %s if needed)", name,
                     record.get_reference_name(), artifact.file)
