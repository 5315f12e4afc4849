"""A stage's reportables are kept with its cache as rendered files plus data, and come back."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import curifactory_like as cf  # noqa: E402
from curifactory_like.caching import JsonCacher  # noqa: E402
from curifactory_like.errors import CurifactoryWarning  # noqa: E402
from curifactory_like.reporting import (  # noqa: E402
    CachedReportable,
    DFReporter,
    FigureReporter,
    HTMLReporter,
    ImageReporter,
    JsonReporter,
    LatexTableReporter,
    LinePlotReporter,
    Reportable,
    render_reportable,
)

SCRIPT = "<script>alert(1)</script>"


def small_figure() -> Figure:
    fig = Figure()
    fig.add_subplot().plot([1, 3, 2])
    return fig


class Badge(Reportable):
    """A user-defined reportable written against curifactory's conventions: a file plus HTML."""

    def __init__(self, text, name=None, group=None):
        self.text = text
        super().__init__(name=name, group=group)

    def render(self):
        with open(os.path.join(self.path, f"{self.qualified_name}.svg"), "w") as outfile:
            outfile.write(f"<svg xmlns='http://www.w3.org/2000/svg'><text>{self.text}</text></svg>")

    def html(self):
        return [f"<p>{self.text}</p>", f"<img src='{self.path}/{self.qualified_name}.svg'>"]


class Broken(Reportable):
    """A reportable whose render() fails."""

    def render(self):
        raise RuntimeError("no display")

    def html(self):
        return "<p>never</p>"


def image_file(folder: Path) -> str:
    path = folder / "source.png"
    small_figure().savefig(path)
    return str(path)


KINDS: dict[str, Callable[[Path], Reportable]] = {
    "html": lambda _: HTMLReporter(["<h1>Title</h1>", "<p>body</p>"], name="r", group="g"),
    "json": lambda _: JsonReporter(
        {"rmse": 0.25, "tags": ["a", SCRIPT], "when": pd.Timestamp(0)}, name="r"
    ),
    "dataframe": lambda _: DFReporter(
        pd.DataFrame({"count": [3, 12], "score": [1 / 3, 0.25], "label": ["x", SCRIPT]}),
        name="r",
        float_prec=2,
    ),
    "dataframe-int-columns": lambda _: DFReporter(pd.DataFrame({0: [1.5], 1: [2]}), name="r"),
    "latex": lambda _: LatexTableReporter(pd.DataFrame({"a": [1, 2], "b": [3.5, 4]}), name="r"),
    "figure": lambda _: FigureReporter(small_figure(), name="r"),
    "figure-svg": lambda _: FigureReporter(small_figure(), name="r", format="svg"),
    "line-plot": lambda _: LinePlotReporter({"train": [1.0, 0.5], "test": [1.2, 0.9]}, name="r"),
    "image": lambda folder: ImageReporter(image_file(folder), name="r"),
}

KIND_CLASSES = {
    "html": HTMLReporter,
    "json": JsonReporter,
    "dataframe": DFReporter,
    "dataframe-int-columns": DFReporter,
    "latex": LatexTableReporter,
    "figure": FigureReporter,
    "figure-svg": FigureReporter,
    "line-plot": LinePlotReporter,
    "image": ImageReporter,
}


def make_stage(make: Callable[[], list[Reportable]], calls: list):
    @cf.stage(outputs=["value"], cachers=[JsonCacher])
    def report_things(record):
        calls.append(record)
        for reportable in make():
            record.report(reportable)
        return 1

    return report_things


def run(stage, overwrite_stages=(), **manager_kwargs) -> cf.ArtifactManager:
    """One run: a fresh live manager (sharing the project's cache) calls ``stage`` once."""
    manager = cf.ArtifactManager("persist", suppress_live_log=True, **manager_kwargs)
    manager.overwrite_stages = list(overwrite_stages)
    stage(cf.Record(manager, cf.ExperimentParameters(name="p0")))
    return manager


def rendered(reportable: Reportable, manager, folder: Path) -> tuple[str, dict[str, bytes]]:
    """The framed HTML ``render_reportable`` gives and the files it writes into ``folder``."""
    html = "".join(render_reportable(reportable, manager, str(folder)))
    return html, {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_builtin_kind_survives_a_cached_rerun(project, tmp_path, kind):
    """A built-in reportable comes back from a cached stage as its own class, rendering the same."""
    calls: list = []
    stage = make_stage(lambda: [KINDS[kind](tmp_path)], calls)
    first = run(stage)
    before = rendered(first.reportables[0], first, tmp_path / "first")
    second = run(stage)

    assert len(calls) == 1
    [again] = second.reportables
    assert type(again) is KIND_CLASSES[kind]
    assert rendered(again, second, tmp_path / "second") == before


def test_rebuilt_reportable_keeps_names_group_stage_and_record(project, tmp_path):
    """A rebuilt reportable keeps name, group, qualified name and stage, on the new record."""
    stage = make_stage(lambda: [JsonReporter({"a": 1}, name="scores", group="metrics")], [])
    run(stage)
    second = run(stage)

    [again] = second.reportables
    assert (again.name, again.group, again.qualified_name, again.stage) == (
        "scores",
        "metrics",
        "p0_report_things_scores",
        "report_things",
    )
    assert again.record is second.records[0]


def test_user_defined_reportable_survives_as_cached_reportable(project, tmp_path):
    """A user-defined reportable comes back as a CachedReportable with the same HTML and files."""
    stage = make_stage(lambda: [Badge(f"ok {SCRIPT}", name="badge", group="g")], [])
    first = run(stage)
    before = rendered(first.reportables[0], first, tmp_path / "first")
    second = run(stage)

    [again] = second.reportables
    assert isinstance(again, CachedReportable)
    assert again.original_class.endswith("Badge") and again.group == "g"
    assert rendered(again, second, tmp_path / "second") == before


@pytest.mark.parametrize(
    "frame, stored_as",
    [
        (pd.DataFrame({"n": [3, 12], "score": [1 / 3, 0.25]}, index=pd.Index(["a", "b"], name="key")), "frame.csv"),
        (pd.DataFrame({0: [1.5], 1: [2]}), "frame.parquet"),  # CSV would turn the labels into strings
    ],
)
def test_rebuilt_dataframe_is_the_same_frame_and_read_only_when_used(project, tmp_path, frame, stored_as):
    """A cached DFReporter shows its stored table without reading its frame; ``df``, when used,
    is the original frame (values, dtypes, labels), and a new precision renders from it."""
    stage = make_stage(lambda: [DFReporter(frame.copy(), name="r")], [])
    before = run(stage).reportables[0].html()
    [frame_file] = [path for path in project.root.rglob("frame.*")]
    assert frame_file.name == stored_as

    [again] = run(stage).reportables
    hidden = frame_file.rename(tmp_path / "away")
    assert again.html() == before  # shown without reading the frame
    with pytest.raises(OSError):
        _ = again.df
    hidden.rename(frame_file)

    [again] = run(stage).reportables
    pd.testing.assert_frame_equal(again.df, frame, check_exact=True)
    again.float_prec = 1
    assert again.html() == DFReporter(frame, float_prec=1).html() != before


def test_dataframe_that_cannot_round_trip_shows_the_same_table(project, tmp_path):
    """A DataFrame neither parquet nor CSV can restore comes back showing its stored table."""
    mixed = pd.DataFrame({"mixed": [0.5, "a"]})  # parquet refuses it, CSV turns 0.5 into "0.5"
    stage = make_stage(lambda: [DFReporter(mixed)], [])
    first = run(stage)
    before = first.reportables[0].html()
    second = run(stage)

    [again] = second.reportables
    assert isinstance(again, CachedReportable)
    assert again.html() == before


def test_live_dataframe_shows_the_table_its_cached_rerun_shows(project, tmp_path):
    """A frame changed in place after its stage ended shows as it was when the stage ended, in
    the computing run's report as in the cached rerun's; a new ``df`` or precision shows anew."""
    frame = pd.DataFrame({"score": [0.25, 0.5]})
    stage = make_stage(lambda: [DFReporter(frame)], [])
    [live] = run(stage).reportables
    frame.loc[0, "score"] = 9.75  # after the stage ended, e.g. by a later stage
    [cached] = run(stage).reportables

    assert live.html() == cached.html()
    assert "0.2500" in live.html() and "9.7500" not in live.html()
    live.float_prec = 1
    assert "9.8" in live.html()
    live.df = pd.DataFrame({"score": [3.0]})
    assert "3.0" in live.html() and "0.5" not in live.html()


def test_no_pickle_files_are_written_for_reportables(project, tmp_path):
    """Storing every kind of reportable writes no .pkl file, only JSON, data and rendered files."""
    stage = make_stage(
        lambda: [make(tmp_path) for make in KINDS.values()] + [Badge("b", name="badge")], []
    )
    run(stage)

    written = [path for path in project.root.rglob("*") if path.is_file()]
    assert not [path for path in written if path.suffix == ".pkl"]
    [manifest] = [path for path in written if path.name == "manifest.json"]
    assert len(json.loads(manifest.read_text())["reportables"]) == len(KINDS) + 1


def test_loading_reportables_unpickles_nothing(project, tmp_path, monkeypatch):
    """Restoring every kind of reportable from the cache never calls the unpickler."""
    stage = make_stage(
        lambda: [make(tmp_path) for make in KINDS.values()] + [Badge("b", name="badge")], []
    )
    run(stage)

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    second = run(stage)
    assert len(second.reportables) == len(KINDS) + 1


def test_corrupted_manifest_warns_and_the_run_continues(project, tmp_path):
    """An unreadable manifest gives a warning naming the stage; the stage still loads."""
    calls: list = []
    stage = make_stage(lambda: [JsonReporter({"a": 1}, name="r")], calls)
    run(stage)
    [manifest] = project.cache.rglob("manifest.json")
    manifest.write_text("{not json")

    with pytest.warns(CurifactoryWarning, match="report_things.*manifest"):
        second = run(stage)
    assert len(calls) == 1
    assert second.records[0].state["value"] == 1
    assert second.reportables == []


def test_missing_cached_file_warns_and_leaves_only_that_reportable_out(project, tmp_path):
    """A reportable whose cached files are gone is left out with a warning naming it."""
    stage = make_stage(
        lambda: [FigureReporter(small_figure(), name="fig"), JsonReporter({"a": 1}, name="j")], []
    )
    run(stage)
    [png] = project.cache.rglob("*.png")
    png.unlink()

    with pytest.warns(CurifactoryWarning, match="p0_report_things_fig.*report_things"):
        second = run(stage)
    assert [r.qualified_name for r in second.reportables] == ["p0_report_things_j"]


def test_pickled_reportables_from_curifactory_are_not_loaded(project, tmp_path):
    """A stage whose reportables were cached as pickles (curifactory's list file) warns instead."""
    calls: list = []
    stage = make_stage(lambda: [], calls)
    first = run(stage)
    record = first.records[0]
    folder = Path(record.get_path("reportables", stage_name="report_things", track=False))
    folder.mkdir()
    (folder / "p0_report_things_0.pkl").write_bytes(pickle.dumps(JsonReporter({"a": 1})))
    list_file = record.get_path("reportables_file_list.json", stage_name="report_things")
    Path(list_file).write_text(json.dumps([str(folder / "p0_report_things_0.pkl")]))
    # curifactory wrote that stage's sidecar too: it has no count of the stage's reportables
    sidecar = Path(record.get_path("value_metadata.json", stage_name="report_things"))
    metadata = json.loads(sidecar.read_text())
    del metadata["stage_reportables"]
    sidecar.write_text(json.dumps(metadata))

    with pytest.warns(CurifactoryWarning, match="report_things.*pickles"):
        second = run(stage)
    assert second.reportables == [] and len(calls) == 1


def test_reportable_that_cannot_render_warns_and_the_run_continues(project, tmp_path):
    """A reportable whose render() fails gives a warning naming it and the stage, not a failure."""
    calls: list = []
    stage = make_stage(lambda: [Broken(name="bad"), JsonReporter({"a": 1}, name="j")], calls)
    with pytest.warns(CurifactoryWarning, match="'p0_report_things_bad'.*'report_things'"):
        run(stage)
    second = run(stage)

    assert len(calls) == 1
    assert [r.qualified_name for r in second.reportables] == ["p0_report_things_j"]


def test_recomputed_stage_without_reportables_drops_the_old_ones(project, tmp_path):
    """Overwriting a stage that no longer reports anything leaves no stale reportables behind."""
    reportables = [JsonReporter({"a": 1}, name="j")]
    calls: list = []
    stage = make_stage(lambda: list(reportables), calls)
    run(stage)
    reportables.clear()
    run(stage, overwrite_stages=["report_things"])

    assert run(stage).reportables == []
    assert len(calls) == 2


def test_dry_cache_run_stores_no_reportables(project, tmp_path):
    """A dry-cache run writes no reportables folder."""
    stage = make_stage(lambda: [JsonReporter({"a": 1}, name="j")], [])
    run(stage, dry_cache=True)

    assert not list(project.root.rglob("*_reportables"))


def test_store_full_run_copies_the_reportables(project, tmp_path):
    """A --store-full run copies the stage's reportables folder into its artifacts."""
    stage = make_stage(lambda: [LinePlotReporter([1, 2, 3], name="curve")], [])
    manager = run(stage, store_full=True)

    run_folder = Path(manager.get_run_output_path())
    [manifest] = run_folder.rglob("manifest.json")
    assert manifest.parent.name.endswith("_report_things_reportables")
    assert list(manifest.parent.rglob("p0_report_things_curve.png"))


def test_repr_html_embeds_images_inline(tmp_path):
    """_repr_html_ shows a figure as a base64 data URI and leaves the reportable as it was."""
    reportable = FigureReporter(small_figure(), name="fig")
    reportable.qualified_name = "p0_stage_fig"

    html = reportable._repr_html_()

    assert 'src="data:image/png;base64,iVBORw0KGgo' in html
    assert "p0_stage_fig" in html
    assert reportable.path == "" and not reportable.rendered


def test_inline_html_embeds_a_cached_reportables_files(project, tmp_path):
    """inline_html() of a CachedReportable embeds the files its original rendered."""
    stage = make_stage(lambda: [Badge("hello", name="badge")], [])
    run(stage)
    [again] = run(stage).reportables

    html = again.inline_html()

    assert "<p>hello</p>" in html
    assert "<img src='data:image/svg+xml;base64," in html


def test_sidecar_counts_the_reportables_of_its_stage(project, tmp_path):
    """The sidecar says how many reportables the stage made, so a cached rerun of a stage that
    made none skips looking for them, and one that made some restores them all."""
    calls: list = []
    quiet = make_stage(lambda: [], calls)
    manager = run(quiet)
    sidecar = Path(manager.records[0].get_path("value_metadata.json", stage_name="report_things"))
    assert json.loads(sidecar.read_text())["stage_reportables"] == 0

    reporting = make_stage(lambda: [JsonReporter({"a": 1}, name="j"), JsonReporter({}, name="k")], calls)
    run(reporting, overwrite_stages=["report_things"])
    assert json.loads(sidecar.read_text())["stage_reportables"] == 2
    again = run(reporting)
    assert len(calls) == 2
    assert [r.qualified_name for r in again.reportables] == ["p0_report_things_j", "p0_report_things_k"]
