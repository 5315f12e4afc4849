"""Parameter-set hashing: golden values, curifactory's rules, and the defects of its repr hash."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

import curifactory_like as cf
from curifactory_like import hashing
from curifactory_like.errors import UnhashableParameterError


@pytest.fixture(autouse=True)
def v1_mode():
    hashing.set_hash_mode("v1")
    yield
    hashing.set_hash_mode(None)


@dataclass
class AB(cf.ExperimentParameters):
    a: int = 5
    b: int = 8


@dataclass
class Mixed(cf.ExperimentParameters):
    a: float = 0.5
    s: str = "x"
    items: list = field(default_factory=lambda: [1, 2.0, "three"])
    d: dict = field(default_factory=lambda: {"k": (1, 2)})


@dataclass
class Holder(cf.ExperimentParameters):
    value: Any = None


def test_v1_golden_values():
    """The v1 hash of known parameter sets never changes (a change would orphan every cache)."""
    assert AB().params_hash() == "c457b111371366b916a3fd95c9360076"
    assert Mixed().params_hash() == "b1641a52a06c7b6d8e5b95e2d1d4c9a9"
    assert cf.ExperimentParameters(name="e").params_hash() == "417580eb4819f2c33c3c69e1d15ae286"


def test_v1_hash_is_fixed_width_hex():
    """Every v1 hash is 32 lowercase hex characters."""
    for params in (AB(), Mixed(), Holder(value=10**40)):
        digest = params.params_hash()
        assert len(digest) == 32 and int(digest, 16) >= 0


def test_legacy_mode_reproduces_curifactory_hash():
    """Legacy mode gives curifactory's exact hash, so an existing cache stays usable."""
    hashing.set_hash_mode("legacy")
    assert AB().params_hash() == "a8a97ac6322ee2448f22f7d168a4c154"


def test_legacy_mode_selected_by_config(project):
    """`"hash_mode": "legacy"` in curifactory_config.json switches a manager to legacy hashing."""
    hashing.set_hash_mode(None)
    (project.root / "curifactory_config.json").write_text(json.dumps({"hash_mode": "legacy"}))
    manager = cf.ArtifactManager("exp", dry=True)
    record = cf.Record(manager, AB())
    assert record.get_hash() == "a8a97ac6322ee2448f22f7d168a4c154"


def test_name_and_bookkeeping_fields_do_not_count():
    """Parameter sets differing only in name/overwrite hash alike."""
    assert AB(name="x").params_hash() == AB(name="y", overwrite=True).params_hash()


def test_values_and_field_names_count():
    """Swapping values between two fields changes the hash."""
    assert AB(a=5, b=8).params_hash() != AB(a=8, b=5).params_hash()


def test_none_valued_new_field_keeps_old_hash():
    """A new field that defaults to None does not change existing hashes."""

    @dataclass
    class Extended(cf.ExperimentParameters):
        a: int = 5
        b: int = 8
        c: Any = None

    assert Extended().params_hash() == AB().params_hash()


def test_hash_representation_none_ignores_field():
    """A field set to None in hash_representations does not affect the hash."""

    @dataclass
    class Operational(cf.ExperimentParameters):
        a: int = 5
        workers: int = 4
        hash_representations: dict = cf.set_hash_functions(workers=None)

    assert Operational(workers=1).params_hash() == Operational(workers=64).params_hash()


def test_custom_hash_function_controls_representation():
    """A custom representation function decides what counts."""

    @dataclass
    class Rounded(cf.ExperimentParameters):
        x: float = 0.0
        hash_representations: dict = cf.set_hash_functions(x=lambda p, v: round(v, 1))

    assert Rounded(x=0.101).params_hash() == Rounded(x=0.099).params_hash()
    assert Rounded(x=0.1).params_hash() != Rounded(x=0.3).params_hash()


def test_nested_dataclass_hashed_by_fields_not_class_name():
    """Nested dataclasses hash by their fields, so renaming a class keeps the cache."""

    @dataclass
    class SubA:
        k: int = 1

    @dataclass
    class SubB:
        k: int = 1

    assert Holder(value=SubA()).params_hash() == Holder(value=SubB()).params_hash()
    assert Holder(value=SubA(k=2)).params_hash() != Holder(value=SubA()).params_hash()


def test_hash_frozen_once_computed():
    """Once stored on the set, the hash stays until reset to None (curifactory's contract)."""
    params = AB()
    params.hash = params.params_hash()
    params.a = 99
    assert params.params_hash() == params.hash
    params.hash = None
    assert params.params_hash() != AB().params_hash()


def test_dry_hash_explains_each_field():
    """params_hash(dry=True) gives curifactory's per-field (strategy, representation) pairs."""
    explanation = AB(a=6).params_hash(dry=True)
    assert explanation["a"] == ("repr(a)", "6")
    assert explanation["name"] == ("SKIPPED: blacklist", None)
    assert Holder().params_hash(dry=True)["value"] == ("SKIPPED: value is None", None)


def test_large_arrays_differing_in_the_middle_hash_differently():
    """Arrays whose repr elides the middle (curifactory collides here) hash by content."""
    first = np.zeros(10_000)
    second = first.copy()
    second[5_000] = 1.0
    assert repr(first) == repr(second)
    assert Holder(value=first).params_hash() != Holder(value=second).params_hash()
    assert Holder(value=first).params_hash() == Holder(value=first.copy()).params_hash()


def test_dataframes_hash_by_content():
    """Two large frames with equal reprs but different cells hash differently."""
    first = pd.DataFrame({"x": np.arange(5_000)})
    second = first.copy()
    second.loc[2_500, "x"] = -1
    assert repr(first) == repr(second)
    assert Holder(value=first).params_hash() != Holder(value=second).params_hash()


def test_lambdas_are_distinguished():
    """Two different lambdas hash differently (curifactory hashes every lambda alike)."""
    assert Holder(value=lambda x: x + 1).params_hash() != Holder(value=lambda x: x * 2).params_hash()


def test_partial_is_hashed_by_function_and_arguments():
    """functools.partial hashes by its function and arguments (curifactory crashes on it)."""
    base = Holder(value=functools.partial(round, ndigits=2)).params_hash()
    assert base == Holder(value=functools.partial(round, ndigits=2)).params_hash()
    assert base != Holder(value=functools.partial(round, ndigits=3)).params_hash()


def test_named_functions_hash_by_qualified_name():
    """A module-level function hashes by module and qualified name, stable across runs."""
    assert Holder(value=np.mean).params_hash() == Holder(value=np.mean).params_hash()
    assert Holder(value=np.mean).params_hash() != Holder(value=np.median).params_hash()


def test_default_repr_object_rejected_with_field_name():
    """An object whose repr is its address is refused with an error naming the field."""

    class Opaque:
        pass

    with pytest.raises(UnhashableParameterError, match="'value'.*set_hash_functions"):
        Holder(value=Opaque()).params_hash()


def test_dict_order_does_not_matter():
    """Dicts with the same items in another order hash alike."""
    assert Holder(value={"a": 1, "b": 2}).params_hash() == Holder(value={"b": 2, "a": 1}).params_hash()


def test_types_are_distinguished():
    """1, 1.0, '1' and True are different parameter values."""
    hashes = {Holder(value=v).params_hash() for v in (1, 1.0, "1", True)}
    assert len(hashes) == 4


def test_aggregate_combo_hash_depends_on_members_not_order(project):
    """An aggregate record's hash combines its input records' hashes, order-independently."""
    manager = cf.ArtifactManager("exp", dry=True)
    r1, r2, r3 = (cf.Record(manager, AB(a=i)) for i in range(3))
    agg1 = cf.Record(manager, None)
    agg1.set_aggregate([r1, r2])
    agg2 = cf.Record(manager, None)
    agg2.set_aggregate([r2, r1])
    agg3 = cf.Record(manager, None)
    agg3.set_aggregate([r1, r3])
    assert agg1.get_hash() == agg2.get_hash() != agg3.get_hash()


def test_string_representation_lists_ignored_params():
    """The readable representation shows ignored fields under IGNORED_PARAMS."""

    @dataclass
    class Operational(cf.ExperimentParameters):
        a: int = 5
        workers: int = 4
        hash_representations: dict = cf.set_hash_functions(workers=None)

    shown = hashing.param_set_string_hash_representations(Operational())
    assert shown["a"] == "5"
    assert shown["IGNORED_PARAMS"] == {"workers": "4"}
