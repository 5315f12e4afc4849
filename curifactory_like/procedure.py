"""``Procedure``: a fixed sequence of stages applied to a new record per parameter set."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .errors import NoArtifactManagerError
from .record import Record

__all__ = ["NoArtifactManagerError", "Procedure"]


class Procedure:
    """A list of stages run in order on one record (an aggregate may only come first).

    Args:
        stages: the decorated stage functions, in order.
        manager: the ArtifactManager; may instead be given to ``run()``.
        name: an optional label.
        previous_proc: when the first stage is an aggregate, aggregate over this procedure's
            records.
        records: when the first stage is an aggregate, aggregate over these records (by default
            over every record of the manager).
    """

    def __init__(
        self,
        stages: Sequence[Callable[..., Any]],
        manager: Any = None,
        name: str | None = None,
        previous_proc: Procedure | None = None,
        records: list[Record] | None = None,
    ):
        self.name = name
        self.stages = list(stages)
        self.record: Record | None = None
        self.manager = manager
        self.records: list[Record] = []
        self.previous_proc = previous_proc
        self.use_records = records

    def run(
        self,
        param_set: Any,
        record: Record | None = None,
        hide: bool = False,
        manager: Any = None,
        records: list[Record] | None = None,
    ) -> Any:
        """Run the stages on a new record for ``param_set`` (or on ``record``); return the last output."""
        if self.manager is None and manager is None:
            raise NoArtifactManagerError(
                "This procedure does not have an artifact manager. Either initialize it with "
                "one, or call with `proc.run(manager=...)`"
            )
        if self.manager is None:
            self.manager = manager
        if records is not None:
            self.use_records = records
        if record is None:
            self.record = Record(self.manager, param_set, hide=hide)
            self.records.append(self.record)
        else:
            self.record = record
        output: Any = None
        for index, stage_function in enumerate(self.stages):
            if index == 0 and self.previous_proc is not None:
                output = stage_function(self.record, self.previous_proc.records)
            elif index == 0 and self.use_records is not None:
                output = stage_function(self.record, self.use_records)
            else:
                output = stage_function(self.record)
        return output
