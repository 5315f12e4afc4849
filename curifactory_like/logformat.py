"""A cheaper ``logging.Formatter`` for the run log.

A run logs two lines per stage call to two handlers (the log file and the console), so at
N=1000 records it formats ~16,000 lines. This formatter gives the same text as
``logging.Formatter(fmt)`` but formats each record once however many handlers share it, and
calls ``time.strftime`` once per second of timestamps instead of once per line.
"""

from __future__ import annotations

import logging
import time


class SharedFormatter(logging.Formatter):
    """``logging.Formatter`` whose result is reused by every handler that shares the instance."""

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._second: int | None = None
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._second_text},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        cached = record.__dict__.get("_shared_format")
        if cached is not None and cached[0] is self:
            return str(cached[1])
        text = super().format(record)
        record.__dict__["_shared_format"] = (self, text)
        return text
