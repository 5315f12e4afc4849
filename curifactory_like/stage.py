"""``@stage`` and ``@aggregate``: declare a stage's inputs, outputs and cachers.

The decorators only declare. They check the declaration against the function signature when
the function is decorated and keep any problem to raise, with the stage named, when the stage
is called (so importing an experiment with one bad stage still lets the others be listed).
Calling a decorated function hands the call to the record's manager, whose runtime maps,
loads or runs it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .caching.lazy import Lazy
from .errors import (
    CachersMismatchError,
    CurifactoryError,
    EmptyCachersError,
    InputSignatureError,
    TransientError,
)


@dataclass(frozen=True)
class SignatureCheck:
    """A stage's declared inputs against its function's signature: the inputs the signature
    lacks, the inputs it has without a default (in signature order), and whether it takes
    ``**kwargs``. Computed once per stage instead of on every call."""

    missing: tuple[str, ...]
    required: tuple[str, ...]
    accepts_var_keyword: bool


@dataclass
class StageDefinition:
    """Everything a decorator declared about one stage function."""

    function: Callable[..., Any]
    inputs: list[str]
    outputs: list[str | Lazy]
    cachers: list[Any] | None
    suppress_missing_inputs: bool = False
    is_aggregate: bool = False
    retries: int = 0
    """How many times a failed call is retried (only for exceptions in ``retry_on``)."""
    timeout: float | None = None
    """Seconds a call may run before it is stopped and fails."""
    retry_on: tuple[type[BaseException], ...] = (TransientError,)
    resources: dict[str, float] = field(default_factory=dict)
    """Resource hints for cluster executors, e.g. ``{"GPU": 1}`` (passed to Dask)."""
    version: str | None = None
    """Pins the stage's code fingerprint by hand (``@stage(..., version="2")``)."""
    nondeterministic: bool = False
    """Its outputs may differ between runs (``experiment reproduce --audit`` reports, not fails)."""
    declaration_problems: list[CurifactoryError] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.function.__name__

    @property
    def module(self) -> str:
        return self.function.__module__

    @property
    def qualname(self) -> str:
        return self.function.__qualname__

    @property
    def output_names(self) -> list[str]:
        return [str(output) for output in self.outputs]

    @functools.cached_property
    def signature_check(self) -> SignatureCheck:
        """How the declared inputs meet the function's signature (worked out on first use)."""
        signature = function_signature(self.function)
        parameters = signature.parameters
        return SignatureCheck(
            missing=tuple(name for name in self.inputs if name not in parameters),
            required=tuple(
                name
                for name, parameter in parameters.items()
                if name in self.inputs and parameter.default is inspect.Parameter.empty
            ),
            accepts_var_keyword=any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
            ),
        )

    def raise_declaration_problems(self) -> None:
        """Raise the first problem found at decoration time, if any."""
        if self.declaration_problems:
            raise self.declaration_problems[0]


@functools.lru_cache(maxsize=1024)
def function_signature(function: Callable[..., Any]) -> inspect.Signature:
    """``inspect.signature(function)``, computed once per function (it costs ~0.1 ms a call)."""
    return inspect.signature(function)


def _missing_signature_inputs(
    function: Callable[..., Any], input_names: Sequence[str], function_inputs: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Inputs missing from the signature, and inputs with no default and no value (curifactory)."""
    signature = function_signature(function)
    missing = [name for name in input_names if name not in signature.parameters]
    no_defaults = [
        name
        for name, parameter in signature.parameters.items()
        if name in input_names
        and parameter.default is inspect.Parameter.empty
        and name not in function_inputs
        and name not in missing
    ]
    return missing, no_defaults


def _declaration_problems(definition: StageDefinition) -> list[CurifactoryError]:
    problems: list[CurifactoryError] = []
    name = definition.name
    try:
        check = definition.signature_check
    except (TypeError, ValueError):
        return problems
    if check.missing and not check.accepts_var_keyword:
        names = ",".join(f'"{m}"' for m in check.missing)
        problems.append(
            InputSignatureError(
                f"Signature for stage {name} does not match stage input list. The stage "
                f"function is missing '{names}': add them as parameters of {name}() or remove "
                "them from inputs=[...]"
            )
        )
    if definition.cachers is not None:
        if len(definition.cachers) == 0:
            problems.append(
                EmptyCachersError(
                    f"Stage '{name}' declares cachers=[]; do not use '[]' for cachers. This will "
                    "always short-circuit because there is nothing that isn't cached. Use "
                    "cachers=None for no caching."
                )
            )
        elif len(definition.cachers) != len(definition.outputs):
            problems.append(
                CachersMismatchError(
                    f"Stage '{name}' - the number of cachers does not match the number of "
                    f"outputs to cache ({len(definition.cachers)} cachers for "
                    f"{len(definition.outputs)} outputs {definition.output_names}); give one "
                    "cacher per output"
                )
            )
    return problems


def _declare(
    function: Callable[..., Any],
    inputs: Sequence[str] | None,
    outputs: Sequence[str | Lazy] | None,
    cachers: Sequence[Any] | None,
    suppress_missing_inputs: bool,
    is_aggregate: bool,
    options: ExecutionOptions,
) -> StageDefinition:
    definition = StageDefinition(
        function=function,
        inputs=list(inputs or []),
        outputs=list(outputs or []),
        cachers=list(cachers) if cachers is not None else None,
        suppress_missing_inputs=suppress_missing_inputs,
        is_aggregate=is_aggregate,
        retries=max(0, int(options.retries)),
        timeout=options.timeout,
        retry_on=tuple(options.retry_on) if options.retry_on is not None else (TransientError,),
        resources=dict(options.resources or {}),
        version=None if options.version is None else str(options.version),
        nondeterministic=bool(options.nondeterministic),
    )
    definition.declaration_problems = _declaration_problems(definition)
    return definition


@dataclass
class ExecutionOptions:
    """Per-stage execution options shared by ``@stage`` and ``@aggregate``."""

    retries: int = 0
    timeout: float | None = None
    retry_on: Sequence[type[BaseException]] | None = None
    resources: dict[str, float] | None = None
    version: str | int | None = None
    nondeterministic: bool = False


def stage(
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str | Lazy] | None = None,
    cachers: Sequence[Any] | None = None,
    suppress_missing_inputs: bool = False,
    *,
    retries: int = 0,
    timeout: float | None = None,
    retry_on: Sequence[type[BaseException]] | None = None,
    resources: dict[str, float] | None = None,
    version: str | int | None = None,
    nondeterministic: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a function ``f(record, *inputs)`` as a stage.

    Args:
        inputs: names read from the record's state and passed as keyword arguments.
        outputs: names (or ``Lazy(name)``) under which the returned values are stored.
        cachers: one cacher (class or instance) per output; ``None`` for no caching.
        suppress_missing_inputs: pass missing inputs as their signature defaults instead of
            raising.
        retries: retry a failed call this many times, for exceptions in ``retry_on``
            (default: only ``curifactory_like.TransientError``).
        timeout: seconds a call may run before it fails with StageTimeoutError.
        resources: resource hints for cluster executors (e.g. ``{"GPU": 1}`` for Dask).
        version: pin the stage's code fingerprint by hand: cached artifacts are recomputed
            when it changes, and code edits are otherwise ignored (see fingerprint.py).
        nondeterministic: the outputs legitimately differ between runs (wall clock, unseeded
            randomness); ``experiment reproduce --audit`` reports their differences without
            failing.
    """
    options = ExecutionOptions(retries, timeout, retry_on, resources, version, nondeterministic)

    def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
        definition = _declare(
            function, inputs, outputs, cachers, suppress_missing_inputs, False, options
        )

        @functools.wraps(function)
        def wrapper(record: Any, *args: Any, **kwargs: Any) -> Any:
            return record.manager.runtime.call_stage(definition, record, args, kwargs, None)

        wrapper.stage_definition = definition  # type: ignore[attr-defined]
        return wrapper

    return decorator


def aggregate(
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str | Lazy] | None = None,
    cachers: Sequence[Any] | None = None,
    *,
    retries: int = 0,
    timeout: float | None = None,
    retry_on: Sequence[type[BaseException]] | None = None,
    resources: dict[str, float] | None = None,
    version: str | int | None = None,
    nondeterministic: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a function ``f(record, records, *inputs)`` as an aggregate stage.

    Each input is passed as a dict ``{record: value}`` over the input records (by default every
    other record of the manager). The aggregate record's hash combines its input records' hashes.
    ``retries``, ``timeout``, ``retry_on``, ``resources``, ``version`` and ``nondeterministic``
    are as for ``@stage``.
    """
    options = ExecutionOptions(retries, timeout, retry_on, resources, version, nondeterministic)

    def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
        definition = _declare(function, inputs, outputs, cachers, False, True, options)

        @functools.wraps(function)
        def wrapper(record: Any, records: list[Any] | None = None, **kwargs: Any) -> Any:
            return record.manager.runtime.call_stage(definition, record, (), kwargs, records)

        wrapper.stage_definition = definition  # type: ignore[attr-defined]
        return wrapper

    return decorator
