"""``StageRuntimeBase``: the runtime's per-run state and the helpers every step shares
(artifact registration, the call log, the code-change and integrity checks of a cached artifact)."""

from __future__ import annotations

import logging
from typing import Any

from .. import fingerprint
from ..caching.artifact_lock import artifact_lock
from ..plan import Decision
from .call_context import CallContext

logger = logging.getLogger("curifactory_like.runtime")


class StageRuntimeBase:
    """State shared by the runtime's steps (see ``StageRuntime``)."""

    def __init__(self, manager: Any):
        self.manager = manager
        self.written_this_run: set[str] = set()
        """Cache paths written during this run (identical calls are computed once)."""
        self.calls: list[dict[str, Any]] = []
        """One entry per executed-pass stage call: record, stage, action, seconds, reason."""
        self.failed_call: tuple[str, str] | None = None
        """``(stage name, record name)`` of the first stage call that raised."""
        self.forced_decision: Decision | None = None
        """Set in executor workers: every call computes."""
        self.retries_override: int | None = None
        """``--retries``: retries for every stage (else each stage's own ``retries=``)."""
        self.timeout_override: float | None = None
        """``--timeout``: seconds for every stage (else each stage's own ``timeout=``)."""
        self.scheduled: dict[tuple[int, int], Any] = {}
        """Outcomes of calls an executor already ran, by (record index, position)."""
        self.mapped_call_count = 0
        """Calls seen by the map pass so far (their ``CallDetail.sequence``)."""
        self.release_consumed = False
        """Put values back on disk once the plan says no later call reads them (CLI runs)."""

    def _register_artifact(self, record: Any, output: Any, artifact: Any) -> None:
        artifacts = self.manager.artifacts
        record.stage_outputs[-1].append(len(artifacts))
        record.state_artifact_reps[str(output)] = len(artifacts)
        artifacts.append(artifact)

    def _log_call(
        self, context: CallContext, action: str, seconds: float, reason: str = ""
    ) -> None:
        self.calls.append(
            {
                "record_index": context.record.get_record_index(),
                "record": context.record.get_reference_name(),
                "position": context.position,
                "stage": context.name,
                "action": action,
                "seconds": seconds,
                "reason": reason,
            }
        )


    def _code_change(self, context: CallContext, metadata: dict[str, Any] | None) -> str | None:
        """Why the stage's code differs from the one that wrote ``metadata`` (None: same/unknown)."""
        if metadata is None or getattr(self.manager, "code_changes", "rerun") == "ignore":
            return None
        current = fingerprint.definition_fingerprint(context.definition)
        return fingerprint.code_change(metadata, current)

    def _integrity_problem(self, cacher: Any, full: bool) -> str | None:
        """``cacher.integrity_problem``; a failure is re-checked under the artifact's shared lock,
        so an artifact another process is still publishing (sidecar not yet written) is judged
        once that process is done, not recomputed with a spurious warning."""
        problem = cacher.integrity_problem(full=full)
        if problem is None or problem == "artifact missing":
            return problem
        with artifact_lock(self.manager.manager_cache_path, [cacher.get_path()], exclusive=False):
            return cacher.integrity_problem(full=full)
