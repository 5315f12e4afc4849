"""Cachers: how stage outputs are saved, found and loaded again.

Paths follow ``[cache]/[subdir/][prefix]_[hash]_[stage]_[artifact][ext]`` with a
``_metadata.json`` sidecar; every built-in cacher writes atomically.
"""

from .atomic import atomic_open, atomic_path, file_checksum
from .base import METADATA_SUFFIX, Cacheable
from .builtin import (
    FileReferenceCacher,
    JsonCacher,
    PandasCacher,
    PandasCsvCacher,
    PandasJsonCacher,
    PathRef,
    PickleCacher,
    RawJupyterNotebookCacher,
    _PandasIOType,
)
from .lazy import Lazy

__all__ = [
    "_PandasIOType",
    "METADATA_SUFFIX",
    "Cacheable",
    "FileReferenceCacher",
    "JsonCacher",
    "Lazy",
    "PandasCacher",
    "PandasCsvCacher",
    "PandasJsonCacher",
    "PathRef",
    "PickleCacher",
    "RawJupyterNotebookCacher",
    "atomic_open",
    "atomic_path",
    "file_checksum",
]
