"""Self-contained ``--store-full`` run folders: writing them, reproducing and auditing a run
from one, and moving one between machines as an archive."""

from __future__ import annotations

from .writer import complete_run_folder

__all__ = ["complete_run_folder"]
