"""The built-in cachers. Every one of them writes atomically (temporary file, then rename)."""

from __future__ import annotations

import json
import logging
import os
from enum import Enum
from typing import Any, Literal

import cloudpickle

from .atomic import atomic_open, atomic_path
from .base import Cacheable

logger = logging.getLogger("curifactory_like.caching")


class JsonCacher(Cacheable):
    """Dumps an object to indented JSON (values JSON cannot hold are written as ``str``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **{**kwargs, "extension": ".json"})

    def load(self) -> Any:
        with open(self.get_path(), encoding="utf-8") as infile:
            return json.load(infile)

    def save(self, obj: Any) -> str:
        path = self.get_path()
        with atomic_open(path, "w", encoding="utf-8") as outfile:
            json.dump(obj, outfile, indent=4, default=str)
        return path


class PickleCacher(Cacheable):
    """Pickles an object with cloudpickle (so lambdas and local classes work too)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **{**kwargs, "extension": ".pkl"})

    def load(self) -> Any:
        with open(self.get_path(), "rb") as infile:
            return cloudpickle.load(infile)

    def save(self, obj: Any) -> str:
        path = self.get_path()
        with atomic_open(path, "wb") as outfile:
            cloudpickle.dump(obj, outfile)
        return path


class _PandasIOType(Enum):
    csv = "csv"
    json = "json"
    parquet = "parquet"
    pickle = "pkl"
    orc = "orc"
    hdf5 = "h5"
    excel = "xlsx"
    xml = "xml"


_PANDAS_READERS = {
    _PandasIOType.csv: "read_csv",
    _PandasIOType.json: "read_json",
    _PandasIOType.parquet: "read_parquet",
    _PandasIOType.pickle: "read_pickle",
    _PandasIOType.orc: "read_orc",
    _PandasIOType.hdf5: "read_hdf",
    _PandasIOType.excel: "read_excel",
    _PandasIOType.xml: "read_xml",
}
_PANDAS_WRITERS = {
    _PandasIOType.csv: "to_csv",
    _PandasIOType.json: "to_json",
    _PandasIOType.parquet: "to_parquet",
    _PandasIOType.pickle: "to_pickle",
    _PandasIOType.orc: "to_orc",
    _PandasIOType.hdf5: "to_hdf",
    _PandasIOType.excel: "to_excel",
    _PandasIOType.xml: "to_xml",
}


class PandasCacher(Cacheable):
    """Saves a pandas DataFrame in a chosen format.

    Args:
        format: one of ``csv, json, parquet, pickle, orc, hdf5`` (needs ``tables``), ``excel``
            (needs ``openpyxl``), ``xml`` (needs ``lxml``).
        to_args: keyword arguments for the ``DataFrame.to_*`` call.
        read_args: keyword arguments for the ``pandas.read_*`` call.
    """

    def __init__(
        self,
        path_override: str | None = None,
        format: Literal["csv", "json", "parquet", "pickle", "orc", "hdf5", "excel", "xml"] = "pickle",
        to_args: dict[str, Any] | None = None,
        read_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        try:
            self.format = _PandasIOType[format]
        except KeyError:
            raise ValueError(
                f"PandasCacher format {format!r} is not supported; use one of "
                f"{', '.join(t.name for t in _PandasIOType)}"
            ) from None
        self.to_args = dict(to_args) if to_args is not None else self._default_to_args()
        self.read_args = dict(read_args) if read_args is not None else self._default_read_args()
        if self.format == _PandasIOType.json:
            logger.warning(
                "Using this cacher is inadvisable for floating point data, as precision "
                "will be lost, creating the potential for different results when using "
                "cached values with this cacher as opposed to the first non-cached run."
            )
        super().__init__(path_override=path_override, extension=f".{self.format.value}", **kwargs)

    def _default_to_args(self) -> dict[str, Any]:
        defaults: dict[_PandasIOType, dict[str, Any]] = {
            _PandasIOType.json: {"double_precision": 15},
            _PandasIOType.hdf5: {"key": "df"},
            _PandasIOType.xml: {"index": False},
        }
        return dict(defaults.get(self.format, {}))

    def _default_read_args(self) -> dict[str, Any]:
        if self.format in (_PandasIOType.csv, _PandasIOType.excel):
            return {"index_col": 0}
        return {}

    def load(self) -> Any:
        import pandas as pd

        self.load_metadata()
        saved_version = self.extra_metadata.get("pandas_version")
        if saved_version and saved_version != pd.__version__:
            logger.warning(
                "Attempting to use pandas v%s to load a dataframe that was initially saved "
                "with pandas v%s",
                pd.__version__,
                saved_version,
            )
        reader = getattr(pd, _PANDAS_READERS[self.format])
        return reader(self.get_path(), **self.read_args)

    def save(self, obj: Any) -> str:
        import pandas as pd

        self.extra_metadata["pandas_version"] = pd.__version__
        self.extra_metadata["to_args"] = self.to_args
        self.extra_metadata["read_args"] = self.read_args
        self.extra_metadata["format"] = self.format.name
        path = self.get_path()
        writer = getattr(obj, _PANDAS_WRITERS[self.format])
        with atomic_path(path) as tmp:
            writer(tmp, **self.to_args)
        self.save_metadata()
        return path


class PandasJsonCacher(PandasCacher):
    """``PandasCacher(format="json")`` (floats lose precision beyond ``double_precision``)."""

    def __init__(
        self,
        path_override: str | None = None,
        to_json_args: dict[str, Any] | None = None,
        read_json_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            path_override=path_override,
            format="json",
            to_args=to_json_args if to_json_args is not None else {"double_precision": 15},
            read_args=read_json_args if read_json_args is not None else {},
            **kwargs,
        )


class PandasCsvCacher(PandasCacher):
    """``PandasCacher(format="csv")``, read back with ``index_col=0``."""

    def __init__(
        self,
        path_override: str | None = None,
        to_csv_args: dict[str, Any] | None = None,
        read_csv_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            path_override=path_override,
            format="csv",
            to_args=to_csv_args if to_csv_args is not None else {},
            read_args=read_csv_args if read_csv_args is not None else {"index_col": 0},
            **kwargs,
        )


RELATIVE_REFERENCES = "references_relative_to_file"
"""Sidecar ``extra`` key: a FileReferenceCacher's paths are relative to its own file."""


class FileReferenceCacher(Cacheable):
    """Stores a path or list of paths a stage wrote; cached only while every file exists."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **{**kwargs, "extension": ".json"})

    def check(self) -> bool:
        if not super().check():
            return False
        files = self.load()
        paths = files if isinstance(files, list) else [files]
        return all(os.path.exists(path) for path in paths)

    def load(self) -> list[str] | str:
        with open(self.get_path(), encoding="utf-8") as infile:
            files = json.load(infile)
        if not self.relative_references():
            return files
        # a --store-full run folder stores its references relative to this file
        base = os.path.dirname(self.get_path())
        if isinstance(files, list):
            return [os.path.normpath(os.path.join(base, path)) for path in files]
        return os.path.normpath(os.path.join(base, files))

    def relative_references(self) -> bool:
        """Whether the stored paths are relative to this cacher's file (see ``runstore``)."""
        sidecar = self.get_path("_metadata.json")
        if not os.path.exists(sidecar):
            return False
        try:
            with open(sidecar, encoding="utf-8") as infile:
                extra = json.load(infile).get("extra") or {}
        except (OSError, ValueError, AttributeError):
            return False
        return bool(extra.get(RELATIVE_REFERENCES))

    def save(self, files: list[str] | str) -> str:
        path = self.get_path()
        with atomic_open(path, "w", encoding="utf-8") as outfile:
            json.dump(files, outfile, indent=4)
        return path


class PathRef(Cacheable):
    """Tracks a path the stage writes itself; the stage returns that path as its output."""

    def save(self, obj: str) -> str:
        internal_path = self.get_path()
        if internal_path != obj:
            raise AssertionError(
                f"Stage returned unexpected path to PathRef cacher for artifact '{self.name}':\n"
                f"\tExpected: '{internal_path}'\n\tReturned: '{obj}'"
            )
        return internal_path

    def load(self) -> str:
        return self.get_path()


class RawJupyterNotebookCacher(Cacheable):
    """Turns a list of code cells (lists of lines) into a Jupyter notebook (nbformat 4 JSON)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **{**kwargs, "extension": ".ipynb"})

    def load(self) -> list[list[str]]:
        with open(self.get_path("_cells.json"), encoding="utf-8") as infile:
            return json.load(infile)

    def save(self, obj: list[list[str]]) -> str:
        notebook = {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": [f"{line}\n" for line in cell[:-1]] + cell[-1:],
                }
                for cell in obj
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        path = self.get_path()
        with atomic_open(path, "w", encoding="utf-8") as outfile:
            json.dump(notebook, outfile, indent=1)
        with atomic_open(self.get_path("_cells.json"), "w", encoding="utf-8") as outfile:
            json.dump(obj, outfile)
        return path
