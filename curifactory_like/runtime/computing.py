"""Computing a stage call: input resolution, the signature check, retries and the deadline,
then storing the outputs (atomic cache writes under the artifact lock, sidecar metadata)."""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from .. import faults, fingerprint
from ..caching.artifact_lock import artifact_lock
from ..caching.base import METADATA_SUFFIX
from ..caching.lazy import Lazy
from ..errors import (
    CacheWriteError,
    ExecutingWithSkippedInputError,
    InputSignatureError,
    OutputSignatureError,
)
from ..record import ArtifactRepresentation, SkippedOutput
from ..stage import function_signature
from .base import StageRuntimeBase
from .call_context import CallContext

logger = logging.getLogger("curifactory_like.runtime")

_STORAGE_ERRORS = frozenset(
    {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG, errno.EIO}
)
"""errno values that mean the disk or folder, not the cacher, is at fault."""
_STORAGE_FIX = (
    "free some disk space, or make the cache folder writable (or point cache_path in "
    "curifactory_config.json elsewhere), then run again"
)


@contextlib.contextmanager
def deadline(seconds: float | None, what: str) -> Iterator[None]:
    """Raise StageTimeoutError in the main thread after ``seconds`` (Unix; no-op elsewhere)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "SIGALRM"
    ):
        yield
        return
    from ..errors import StageTimeoutError

    def expire(signum: int, frame: Any) -> None:
        raise StageTimeoutError(f"{what} ran past its timeout of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)



class ComputingMixin(StageRuntimeBase):
    """Run the stage body and store what it returns."""

    def _resolve_inputs(self, context: CallContext) -> dict[str, Any]:
        def resolve(input_name: str, value: Any) -> Any:
            if isinstance(value, SkippedOutput):
                raise ExecutingWithSkippedInputError(
                    f"Stage '{context.name}' needs input '{input_name}', but the stage that makes "
                    f"it ('{value.stage_name}') was skipped and it is not cached. Run with "
                    "--no-dag, or give that stage a cacher."
                )
            if isinstance(value, Lazy) and value.resolve:
                logger.debug("Resolving lazy load object '%s'", input_name)
                return value.load()
            return value

        resolved: dict[str, Any] = {}
        for input_name, value in context.function_inputs.items():
            if context.definition.is_aggregate and input_name in context.definition.inputs:
                resolved[input_name] = {r: resolve(input_name, v) for r, v in value.items()}
            else:
                resolved[input_name] = resolve(input_name, value)
        return resolved

    def _compute(self, context: CallContext, reason: str = "") -> None:
        record = context.record
        manager = self.manager
        inputs = self._resolve_inputs(context)
        self._check_call_signature(context, inputs)
        logger.info("Stage %s executing...", context.name)
        started = time.perf_counter()
        faults.checkpoint("stage.start")
        try:
            returned = self._call_with_retries(context, inputs)
        except BaseException:
            if self.failed_call is None:
                self.failed_call = (context.name, record.get_reference_name())
            self._log_call(context, "failed", time.perf_counter() - started, reason)
            raise
        elapsed = time.perf_counter() - started
        faults.checkpoint("stage.end")
        del inputs
        self._log_call(context, "computed", elapsed, reason)
        self._store_outputs(context, returned)
        manager.store_reportables(context)
        record.store_tracked_paths()
        logger.info("Stage %s complete", context.name)

    def _check_call_signature(self, context: CallContext, inputs: dict[str, Any]) -> None:
        """Name the stage and the fix when its function cannot take what it is given."""
        definition = context.definition
        try:
            signature = function_signature(definition.function)
        except (TypeError, ValueError):
            return
        leading = (context.record, context.records) if definition.is_aggregate else (
            context.record, *context.args
        )
        try:
            signature.bind(*leading, **inputs)
        except TypeError as exc:
            raise InputSignatureError(
                f"stage '{context.name}' cannot be called with its declared inputs "
                f"{list(definition.inputs)}: {exc}; declare every parameter of "
                f"{context.name}() after record in inputs=[...], give it a default value, or "
                "pass it when calling the stage"
            ) from exc

    def _call_with_retries(self, context: CallContext, inputs: dict[str, Any]) -> Any:
        """Run the stage body, retrying exceptions in ``retry_on`` and enforcing ``timeout``."""
        definition = context.definition
        retries = definition.retries if self.retries_override is None else self.retries_override
        timeout = definition.timeout if self.timeout_override is None else self.timeout_override
        attempt = 0
        while True:
            try:
                with deadline(timeout, f"stage '{context.name}'"):
                    if definition.is_aggregate:
                        return definition.function(context.record, context.records, **inputs)
                    return definition.function(context.record, *context.args, **inputs)
            except definition.retry_on as exc:
                if attempt >= retries:
                    raise
                attempt += 1
                logger.warning(
                    "Stage %s failed (%s: %s); retry %d of %d",
                    context.name,
                    type(exc).__name__,
                    exc,
                    attempt,
                    retries,
                )

    def _store_outputs(self, context: CallContext, returned: Any) -> None:
        record = context.record
        manager = self.manager
        outputs = context.outputs
        if not outputs:
            record.output = returned
            return
        values = returned if isinstance(returned, tuple) else (returned,)
        if len(values) != len(outputs):
            raise OutputSignatureError(
                f"Returned values from '{context.name}' do not match expected stage outputs. "
                f"The function should return values for {outputs} (it returned "
                f"{len(values)} value{'s' if len(values) != 1 else ''}); return one value per "
                "output, as a tuple when there are several"
            )
        writing = context.cachers is not None and not manager.dry and not manager.dry_cache
        if context.cachers is not None:
            logger.info("Stage %s caching outputs...", context.name)
        kept = []
        reported = sum(
            1 for r in manager.reportables if r.record is record and r.stage == context.name
        )
        for index, (output, value) in enumerate(zip(outputs, values, strict=True)):
            artifact = ArtifactRepresentation(record, output, value)
            cacher = context.cachers[index] if context.cachers is not None else None
            if writing and cacher is not None:
                with artifact_lock(manager.manager_cache_path, [cacher.get_path()], exclusive=True):
                    cacher.sidecar_deferred = True  # written below, once, with every field
                    try:
                        self._save(context, cacher, output, value)
                    finally:
                        cacher.sidecar_deferred = False
                    artifact.file = cacher.get_path()
                    artifact.cacher = cacher
                    cacher.collect_metadata()
                    cacher.metadata["preview"] = artifact.string
                    cacher.metadata.update(
                        fingerprint.definition_fingerprint(context.definition).sidecar_fields()
                    )
                    cacher.metadata["stage_reportables"] = reported
                    artifact.metadata = self._save_sidecar(context, cacher, output)
                self.written_this_run.add(cacher.get_path())
            lazy_kept = isinstance(output, Lazy) and cacher is not None and writing
            state_value = output.bind(cacher) if lazy_kept else value
            record.state[str(output)] = state_value
            kept.append(state_value)
            artifact.action = "computed"
            self._register_artifact(record, output, artifact)
        record.output = kept[0] if len(kept) == 1 else tuple(kept)

    def _save_sidecar(self, context: CallContext, cacher: Any, output: Any) -> Any:
        """Write the artifact's sidecar; a file system error names the output and its stage."""
        try:
            return cacher.save_metadata()
        except OSError as exc:
            raise CacheWriteError(
                f"stage '{context.name}' of {context.record.get_reference_name()}: the metadata "
                f"sidecar of output '{output}' could not be written to "
                f"{cacher.get_path(METADATA_SUFFIX)} ({type(exc).__name__}: {exc}); the "
                "artifact was written but counts as not cached without it. Check that nothing "
                f"else is at that path, or {_STORAGE_FIX}"
            ) from exc

    def _save(self, context: CallContext, cacher: Any, output: Any, value: Any) -> None:
        try:
            faults.checkpoint("artifact.write")
            cacher.save(value)
            faults.checkpoint("artifact.written")
        except AssertionError:
            raise  # a cacher's own contract check (e.g. PathRef's path) speaks for itself
        except Exception as exc:
            try:
                path = cacher.get_path()
            except Exception:  # a broken cacher may not even give a path
                path = "?"
            if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRORS:
                fix = _STORAGE_FIX
            else:
                fix = (
                    f"use a cacher that can serialise a {type(value).__name__} "
                    "(e.g. PickleCacher), or fix the cacher"
                )
            raise CacheWriteError(
                f"stage '{context.name}' of {context.record.get_reference_name()}: "
                f"{type(cacher).__name__} could not write output '{output}' to {path} "
                f"({type(exc).__name__}: {exc}); {fix}"
            ) from exc
