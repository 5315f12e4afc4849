"""``cf.sweep``: grid and zipped expansion, generated names, validation, and use in a real run."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import curifactory_like as cf
from curifactory_like.experiment import run_experiment


@dataclass
class Model:
    lr: float = 0.1
    act: str = "relu"


@dataclass
class Params(cf.ExperimentParameters):
    lr: float = 0.01
    depth: int = 2
    epochs: int = 1
    model: Model = field(default_factory=Model)
    layers: list = field(default_factory=lambda: [8])
    tag: object = None


def test_grid_is_a_cartesian_product_in_order():
    """A grid of 2 x 3 values gives 6 sets, the last field varying fastest, named by value."""
    sets = cf.sweep(Params(name="mlp"), grid={"depth": [2, 3], "lr": [0.1, 0.01, 1e-05]})
    assert [p.name for p in sets] == [
        "mlp_depth=2_lr=0.1", "mlp_depth=2_lr=0.01", "mlp_depth=2_lr=1e-05",
        "mlp_depth=3_lr=0.1", "mlp_depth=3_lr=0.01", "mlp_depth=3_lr=1e-05",
    ]
    assert [(p.depth, p.lr) for p in sets] == [
        (2, 0.1), (2, 0.01), (2, 1e-05), (3, 0.1), (3, 0.01), (3, 1e-05)
    ]
    assert all(type(p) is Params for p in sets)


def test_zipped_fields_vary_together_and_the_rest_is_a_product():
    """fluidml's grouping: a zipped group of 2 pairs times a grid of 3 values gives 6 sets."""
    sets = cf.sweep(
        Params(name="m"),
        grid={"depth": [1, 2, 3]},
        zipped=[{"lr": [0.1, 0.01], "epochs": [10, 50]}],
    )
    assert len(sets) == 6
    assert {(p.lr, p.epochs) for p in sets} == {(0.1, 10), (0.01, 50)}
    assert sets[1].name == "m_depth=1_lr=0.01_epochs=50"


def test_two_zipped_groups_form_a_product():
    """Two zipped groups of 2 and 3 rows give 6 sets; a single dict is one group."""
    sets = cf.sweep(
        Params(), zipped=[{"lr": [0.1, 0.2], "epochs": [1, 2]}, {"depth": [1, 2, 3]}]
    )
    assert len(sets) == 6
    assert sets[0].name == "lr=0.1_epochs=1_depth=1"  # an UNNAMED base adds no prefix
    assert len(cf.sweep(Params(), zipped={"lr": [0.1, 0.2], "epochs": [1, 2]})) == 2


def test_names_are_stable_readable_and_file_name_safe():
    """None, bools, strings, functions and tuples render readably; unsafe characters become '-'."""
    sets = cf.sweep(
        Params(name="x"),
        grid={"tag": [None, True, "a/b c", len, (1, 2)]},
    )
    assert [p.name for p in sets] == [
        "x_tag=None", "x_tag=True", "x_tag=a-b-c", "x_tag=len", "x_tag=1+2"
    ]
    again = cf.sweep(Params(name="x"), grid={"tag": [None, True, "a/b c", len, (1, 2)]})
    assert [p.name for p in again] == [p.name for p in sets]
    assert cf.sweep(Params(name="x"), grid={"depth": [1]}, name="")[0].name == "depth=1"
    long = cf.sweep(Params(name="x"), grid={"tag": ["v" * 100]})[0].name
    assert len(long) < 60 and "~" in long


def test_names_that_would_collide_get_a_digest_and_stay_unique():
    """'a b' and 'a-b' render alike, so both get a digest of their exact value."""
    sets = cf.sweep(Params(name="x"), grid={"tag": ["a b", "a-b", "c"]})
    names = [p.name for p in sets]
    assert len(set(names)) == 3
    assert names[2] == "x_tag=c"
    assert names[0].startswith("x_tag=a-b~") and names[1].startswith("x_tag=a-b~")


def test_nested_dataclass_fields_are_swept_with_dotted_names():
    """'model.lr' replaces the field of the nested dataclass; the base is left unchanged."""
    base = Params(name="n")
    sets = cf.sweep(base, grid={"model.lr": [0.5, 0.7]})
    assert [p.model.lr for p in sets] == [0.5, 0.7]
    assert [p.name for p in sets] == ["n_model.lr=0.5", "n_model.lr=0.7"]
    assert base.model.lr == 0.1


def test_sets_share_no_mutable_values_and_get_their_own_hash():
    """Each set is a deep copy, and a hash pinned on the base is not inherited."""
    base = Params(name="b", hash="pinned")
    first, second = cf.sweep(base, grid={"depth": [1, 2]})
    first.layers.append(16)
    assert second.layers == [8] and base.layers == [8]
    assert first.hash is None and second.hash is None


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"grid": {"lrr": [1]}}, "'lrr' is not a field"),
        ({"grid": {"lrr": [1]}}, "did you mean 'lr'"),
        ({"grid": {"model.x": [1]}}, "'model.x' is not a field of model"),
        ({"grid": {"depth.x": [1]}}, "not a dataclass"),
        ({"grid": {"lr": []}}, "grid['lr'] is an empty list"),
        ({"zipped": [{"lr": []}]}, "zipped[0]['lr'] is an empty list"),
        ({"grid": {"lr": 0.1}}, "write 'lr': [0.1]"),
        ({"grid": {"lr": "abc"}}, "not a list of values"),
        ({"zipped": [{"lr": [1, 2], "depth": [1]}]}, "'lr' has 2, 'depth' has 1"),
        ({"grid": {"lr": [1]}, "zipped": [{"lr": [2]}]}, "'lr' is in both grid and zipped[0]"),
        ({"zipped": [{"lr": [1]}, {"lr": [2]}]}, "'lr' is in both zipped[0] and zipped[1]"),
        ({"grid": {"model": [Model()]}, "zipped": [{"model.lr": [1]}]}, "(as 'model')"),
        ({"grid": {"name": ["a"]}}, "names and hashes"),
        ({"zipped": [{}]}, "zipped[0] is empty"),
        ({"zipped": [[1, 2]]}, "each zipped group is a dict"),
        ({"grid": {"lr": [0.1, 0.1]}}, "holds the same value twice"),
    ],
)
def test_bad_sweeps_raise_a_parameter_error_naming_the_field(kwargs, fragment):
    """Every kind of bad input raises SweepError (a ParameterError) saying what and how to fix."""
    with pytest.raises(cf.SweepError) as info:
        cf.sweep(Params(name="p"), **kwargs)
    assert fragment in str(info.value)
    assert isinstance(info.value, cf.ParameterError)


def test_base_must_be_an_instance():
    """Passing the class instead of an instance is refused with a hint."""
    with pytest.raises(cf.SweepError, match="not an instance"):
        cf.sweep(Params, grid={"lr": [1]})  # type: ignore[arg-type]


def test_a_sweep_runs_as_an_ordinary_parameter_file(project):
    """get_params() returning a sweep runs every set, each cached under its own hash."""
    project.params(
        "grid",
        """
        from dataclasses import dataclass
        import curifactory_like as cf

        @dataclass
        class Params(cf.ExperimentParameters):
            a: int = 1
            b: float = 0.5
            c: str = "x"

        def get_params():
            return cf.sweep(Params(name="s"), grid={"a": [1, 2]},
                            zipped=[{"b": [0.5, 1.5], "c": ["x", "y"]}])
        """,
    )
    project.experiment(
        "grid",
        """
        import curifactory_like as cf
        from curifactory_like.caching import JsonCacher

        @cf.stage(outputs=["value"], cachers=[JsonCacher])
        def compute(record):
            p = record.params
            return f"{p.a}-{p.b}-{p.c}"

        def run(param_sets, manager):
            return [compute(cf.Record(manager, p)) for p in param_sets]
        """,
    )
    results, manager = run_experiment("grid", ["grid"], report=False)
    assert manager.status == "complete"
    assert [r.state["value"] for r in results] == ["1-0.5-x", "1-1.5-y", "2-0.5-x", "2-1.5-y"]
    names = [name for name, _ in manager.param_file_param_sets["grid"]]
    assert names == ["s_a=1_b=0.5_c=x", "s_a=1_b=1.5_c=y", "s_a=2_b=0.5_c=x", "s_a=2_b=1.5_c=y"]
    hashes = {h for _, h in manager.param_file_param_sets["grid"]}
    assert len(hashes) == 4
    assert len([f for f in project.cache_files() if f.endswith("_value.json")]) == 4
    _, selected = run_experiment("grid", ["grid"], param_set_names=["s_a=2_b=1.5_c=y"],
                                 report=False)
    assert [n for n, _ in selected.param_file_param_sets["grid"]] == ["s_a=2_b=1.5_c=y"]


def test_numpy_arrays_sweep_as_python_numbers():
    """A 1-D numpy array is swept as Python numbers: readable names, hashes of a plain list."""
    np = pytest.importorskip("numpy")
    from_numpy = cf.sweep(Params(name="n"), grid={"lr": np.linspace(0.1, 0.3, 3)})
    by_hand = cf.sweep(Params(name="n"), grid={"lr": [0.1, 0.2, 0.3]})
    assert [p.name for p in from_numpy] == ["n_lr=0.1", "n_lr=0.2", "n_lr=0.3"]
    assert [type(p.lr) for p in from_numpy] == [float, float, float]
    assert [p.params_hash() for p in from_numpy] == [p.params_hash() for p in by_hand]
