"""How each built-in reportable kind is kept with a stage's cache (``dump``: the files and the
manifest ``data`` it is rebuilt from) and rebuilt (``load``); see ``persistence``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from curifactory_like.reporting.builtin import (
    DFReporter,
    FigureReporter,
    HTMLReporter,
    ImageReporter,
    JsonReporter,
    LatexTableReporter,
    LinePlotReporter,
)
from curifactory_like.reporting.reportable import Reportable

if TYPE_CHECKING:
    import pandas as pd

_RENDERED = "rendered"


def _inside(folder: str, relative: str) -> str:
    """``folder/relative``, refusing a path that leaves ``folder`` (a corrupted manifest)."""
    if not isinstance(relative, str) or os.path.isabs(relative):
        raise ValueError(f"{relative!r} is not a relative path")
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, relative))
    if path != root and not path.startswith(root + os.sep):
        raise ValueError(f"{relative!r} points outside {folder}")
    return path


class _Codec(NamedTuple):
    """How one built-in kind is stored (``dump``) and rebuilt (``load``)."""

    kind: str
    dump: Callable[[Any, str], dict[str, Any]]
    """(reportable, entry folder) -> the ``data`` of its manifest entry, after writing files."""
    load: Callable[[dict[str, Any], str, str | None, str | None], Reportable]
    """(data, entry folder, name, group) -> the rebuilt reportable."""


def _write_text(folder: str, file_name: str, text: str) -> str:
    with open(os.path.join(folder, file_name), "w", encoding="utf-8") as outfile:
        outfile.write(text)
    return file_name


def _read_text(folder: str, relative: str) -> str:
    with open(_inside(folder, relative), encoding="utf-8") as infile:
        return infile.read()


def _read_bytes(folder: str, relative: str) -> bytes:
    with open(_inside(folder, relative), "rb") as infile:
        return infile.read()


def _dump_html(reportable: HTMLReporter, folder: str) -> dict[str, Any]:
    return {"html_file": _write_text(folder, "content.html", reportable.html())}


def _load_html(data: dict[str, Any], folder: str, name: str | None, group: str | None) -> Any:
    return HTMLReporter(_read_text(folder, data["html_file"]), name=name, group=group)


def _dump_json(reportable: JsonReporter, folder: str) -> dict[str, Any]:
    return {"json_file": _write_text(folder, "data.json", json.dumps(reportable.data, default=str))}


def _load_json(data: dict[str, Any], folder: str, name: str | None, group: str | None) -> Any:
    return JsonReporter(json.loads(_read_text(folder, data["json_file"])), name=name, group=group)


def _same_frame(first: pd.DataFrame, second: pd.DataFrame) -> bool:
    """Whether two frames hold the same values with the same dtypes, labels and label types."""
    return (
        first.equals(second)
        and first.dtypes.equals(second.dtypes)
        and first.index.equals(second.index)
        and first.columns.equals(second.columns)
        and first.index.dtype == second.index.dtype
        and first.columns.dtype == second.columns.dtype
        and list(first.index.names) == list(second.index.names)
        and list(first.columns.names) == list(second.columns.names)
    )


def _dump_frame_exact_csv(reportable: DFReporter, folder: str) -> dict[str, Any]:
    """CSV when the frame reads back identical: readable, and read without pyarrow."""
    data = _dump_frame_csv(reportable, folder)
    if not _same_frame(_read_frame(os.path.join(folder, data["frame_file"])), reportable.df):
        raise ValueError("the frame does not read back from CSV with the same values and dtypes")
    return data


def _dump_frame_parquet(reportable: DFReporter, folder: str) -> dict[str, Any]:
    reportable.df.to_parquet(os.path.join(folder, "frame.parquet"))
    return {"frame_file": "frame.parquet", "float_prec": reportable.float_prec}


def _dump_frame_csv(reportable: DFReporter, folder: str) -> dict[str, Any]:
    reportable.df.to_csv(os.path.join(folder, "frame.csv"))
    return {"frame_file": "frame.csv", "float_prec": reportable.float_prec}


def _read_frame(path: str) -> pd.DataFrame:
    import pandas as pd

    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    # pandas 3 reads floats exactly by default and deprecates asking for it.
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    return pd.read_csv(path, index_col=0, **exact)


def _load_frame(data: dict[str, Any], folder: str, name: str | None, group: str | None) -> Any:
    df = _read_frame(_inside(folder, data["frame_file"]))
    return DFReporter(df, name=name, group=group, float_prec=int(data["float_prec"]))


def _load_frame_lazily(
    data: dict[str, Any], folder: str, name: str | None, group: str | None, fragment: str
) -> Any:
    """The stored table is shown as it is; the frame is read only if the reporter's ``df`` is
    used (reading a parquet file costs pyarrow's parquet modules, ~25 MB, in a warm run)."""
    path = _inside(folder, data["frame_file"])
    return DFReporter._from_storage(
        lambda: _read_frame(path), fragment, name, group, int(data["float_prec"])
    )


def _dump_latex(reportable: LatexTableReporter, folder: str) -> dict[str, Any]:
    return {"latex_file": _write_text(folder, "table.tex", reportable.latex())}


def _load_latex(data: dict[str, Any], folder: str, name: str | None, group: str | None) -> Any:
    reportable = LatexTableReporter(None, name=name, group=group)
    reportable.latex_text = _read_text(folder, data["latex_file"])
    return reportable


def _rendered_image(reportable: Any) -> str:
    relative = os.path.join(_RENDERED, reportable._file_name(reportable._extension))
    return relative.replace(os.sep, "/")


def _dump_figure(reportable: FigureReporter, folder: str) -> dict[str, Any]:
    return {"image": _rendered_image(reportable), "format": reportable._extension[1:]}


def _load_figure(data: dict[str, Any], folder: str, name: str | None, group: str | None) -> Any:
    reportable = FigureReporter(None, name=name, group=group, format=str(data["format"]))
    reportable.image_data = _read_bytes(folder, data["image"])
    return reportable


def _dump_line_plot(reportable: LinePlotReporter, folder: str) -> dict[str, Any]:
    return {"image": _rendered_image(reportable), "format": reportable._extension[1:]}


def _load_line_plot(data: dict[str, Any], folder: str, name: str | None, group: str | None) -> Any:
    reportable = LinePlotReporter(
        None, name=name, group=group, savefig_kwargs={"format": str(data["format"])}
    )
    reportable.image_data = _read_bytes(folder, data["image"])
    return reportable


def _dump_image(reportable: ImageReporter, folder: str) -> dict[str, Any]:
    return {"image": _rendered_image(reportable), "image_path": reportable.image_path}


def _load_image(data: dict[str, Any], folder: str, name: str | None, group: str | None) -> Any:
    reportable = ImageReporter(_inside(folder, data["image"]), name=name, group=group)
    reportable.image_path = str(data["image_path"])
    return reportable


_CODECS: dict[type, tuple[_Codec, ...]] = {
    HTMLReporter: (_Codec("HTMLReporter", _dump_html, _load_html),),
    JsonReporter: (_Codec("JsonReporter", _dump_json, _load_json),),
    DFReporter: (
        _Codec("DFReporter", _dump_frame_exact_csv, _load_frame),
        _Codec("DFReporter", _dump_frame_parquet, _load_frame),
        _Codec("DFReporter", _dump_frame_csv, _load_frame),
    ),
    LatexTableReporter: (_Codec("LatexTableReporter", _dump_latex, _load_latex),),
    FigureReporter: (_Codec("FigureReporter", _dump_figure, _load_figure),),
    LinePlotReporter: (_Codec("LinePlotReporter", _dump_line_plot, _load_line_plot),),
    ImageReporter: (_Codec("ImageReporter", _dump_image, _load_image),),
}
"""Built-in classes (exact types: a subclass may show anything) and how each is stored, in
order of preference."""

_LOADERS = {codec.kind: codec.load for codecs in _CODECS.values() for codec in codecs}

_LAZY_LOADERS: dict[str, Callable[[dict[str, Any], str, str | None, str | None, str], Reportable]]
_LAZY_LOADERS = {"DFReporter": _load_frame_lazily}
"""Kinds whose stored fragment (checked at store time to be what the rebuilt reportable
renders) is shown as it is, reading their data only when it is used."""
