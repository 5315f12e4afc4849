"""``CallContext``: one stage call on one record, as the runtime's steps pass it along."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..stage import StageDefinition


@dataclass
class CallContext:
    """One call of a stage on one record, prepared for mapping, loading or computing."""

    definition: StageDefinition
    record: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    records: list[Any] | None
    outputs: list[Any]
    cachers: list[Any] | None
    function_inputs: dict[str, Any]
    position: int

    @property
    def name(self) -> str:
        return self.definition.name
