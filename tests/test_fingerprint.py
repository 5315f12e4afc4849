"""Stage code fingerprints: what changes them and what does not (fingerprint.py).

Each variant of a small three-module project (stage in ``top``, which calls ``mid``, which calls
``deep``) is written to its own folder and imported fresh under the same module names, so two
fingerprints differ only if the code does.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from curifactory_like import fingerprint

PACKAGE = "fpproj"

DEEP = '''\
"""Helpers two modules away from the stage."""

FACTOR = 3
OFFSET = 1


def helper(x, scale=2):
    """Scale x."""
    return x * scale * FACTOR


def unused(x):
    return x - 1
'''

MID = '''\
from fpproj import deep


def middle(x):
    return deep.helper(x) + 1
'''

TOP = '''\
import curifactory_like as cf
import pandas as pd

from fpproj.mid import middle


class Model:
    def predict(self, x):
        return middle(x)


@cf.stage(inputs=["x"], outputs=["y"])
def fit(record, x):
    """Fit the model."""
    model = Model()
    return model.predict(x) + len(pd.__name__)
'''


def load(root: Path, deep: str = DEEP, mid: str = MID, top: str = TOP) -> fingerprint.StageFingerprint:
    """Write the variant below ``root``, import it fresh and fingerprint its stage."""
    package = root / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, source in (("deep", deep), ("mid", mid), ("top", top)):
        (package / f"{name}.py").write_text(textwrap.dedent(source))
    for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        module = __import__(f"{PACKAGE}.top", fromlist=["fit"])
        return fingerprint.definition_fingerprint(module.fit.stage_definition)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture
def base(tmp_path: Path) -> fingerprint.StageFingerprint:
    return load(tmp_path / "base")


def test_parts_cover_project_code_transitively_and_not_libraries(base):
    assert set(base.parts) == {
        "function:fpproj.top.fit",
        "class:fpproj.top.Model",
        "function:fpproj.mid.middle",
        "function:fpproj.deep.helper",
        "constant:fpproj.deep.FACTOR",
    }
    assert "pandas" in base.libraries  # recorded by version, not fingerprinted
    assert not any("pandas" in key or "curifactory_like" in key for key in base.parts)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param({"top": TOP.replace('"""Fit the model."""', '"""Fit it, better documented."""')},
                     id="docstring"),
        pytest.param({"top": TOP.replace("model = Model()", "model = Model()  # build it")},
                     id="comment"),
        pytest.param({"top": TOP.replace("return model.predict(x) + len(pd.__name__)",
                                         "return (\n        model.predict( x )\n        + len(pd.__name__)\n    )\n\n")},
                     id="formatting"),
        pytest.param({"deep": DEEP.replace('"""Scale x."""', "# scales x\n    # twice")
                      .replace("return x * scale * FACTOR", "return x*scale*FACTOR  # same")},
                     id="helper-comment-and-spacing"),
        pytest.param({"deep": DEEP.replace("OFFSET = 1", "OFFSET = 99")}, id="unused-constant"),
        pytest.param({"deep": DEEP.replace("return x - 1", "return x - 2")}, id="unused-function"),
        pytest.param({"top": TOP.replace("@cf.stage(inputs=[\"x\"], outputs=[\"y\"])",
                                         "@cf.stage(inputs=[\"x\"], outputs=[\"y\"], retries=2)")},
                     id="decorator-options"),
    ],
)
def test_cosmetic_or_unrelated_edits_keep_the_fingerprint(tmp_path, base, variant):
    assert load(tmp_path / "variant", **variant).digest == base.digest


@pytest.mark.parametrize(
    ("variant", "named"),
    [
        pytest.param({"deep": DEEP.replace("x * scale * FACTOR", "x * scale * FACTOR + 1")},
                     "function fpproj.deep.helper", id="helper-two-modules-away"),
        pytest.param({"deep": DEEP.replace("FACTOR = 3", "FACTOR = 4")},
                     "constant fpproj.deep.FACTOR", id="constant"),
        pytest.param({"deep": DEEP.replace("scale=2", "scale=5")},
                     "function fpproj.deep.helper", id="default-argument"),
        pytest.param({"mid": MID.replace("+ 1", "+ 2")}, "function fpproj.mid.middle",
                     id="helper-one-module-away"),
        pytest.param({"top": TOP.replace("return middle(x)", "return middle(x) * 2")},
                     "class fpproj.top.Model", id="method"),
        pytest.param({"top": TOP.replace("+ len(pd.__name__)", "- len(pd.__name__)")},
                     "function fpproj.top.fit", id="stage-body"),
    ],
)
def test_real_edits_change_the_fingerprint_and_are_named(tmp_path, base, variant, named):
    changed = load(tmp_path / "variant", **variant)
    assert changed.digest != base.digest
    assert fingerprint.describe_difference(base.parts, changed.parts) == named
    assert fingerprint.code_change(base.sidecar_fields(), changed) == (
        f"stage code changed ({named})"
    )


def test_default_argument_naming_a_constant_follows_it(tmp_path):
    deep = DEEP.replace("scale=2", "scale=OFFSET")
    first = load(tmp_path / "one", deep=deep)
    assert "constant:fpproj.deep.OFFSET" in first.parts
    second = load(tmp_path / "two", deep=deep.replace("OFFSET = 1", "OFFSET = 2"))
    assert fingerprint.describe_difference(first.parts, second.parts) == (
        "constant fpproj.deep.OFFSET"
    )


def test_new_dependency_is_named(tmp_path, base):
    mid = MID.replace("deep.helper(x) + 1", "deep.helper(x) + deep.unused(x)")
    changed = load(tmp_path / "variant", mid=mid)
    assert "function fpproj.deep.unused now used" in fingerprint.describe_difference(
        base.parts, changed.parts
    )


def test_recursion_terminates_and_is_stable(tmp_path):
    deep = DEEP + "\n\ndef ping(n):\n    return pong(n - 1) if n else 0\n\n\ndef pong(n):\n    return ping(n)\n"
    mid = MID.replace("deep.helper(x) + 1", "deep.ping(x)")
    first = load(tmp_path / "one", deep=deep, mid=mid)
    second = load(tmp_path / "two", deep=deep, mid=mid)
    assert {"function:fpproj.deep.ping", "function:fpproj.deep.pong"} <= set(first.parts)
    assert first.digest == second.digest


def test_version_pin_replaces_the_code_fingerprint(tmp_path):
    pinned = TOP.replace('outputs=["y"])', 'outputs=["y"], version="2")')
    first = load(tmp_path / "one", top=pinned)
    edited = load(tmp_path / "two", top=pinned.replace("+ len(", "- len("),
                  deep=DEEP.replace("FACTOR = 3", "FACTOR = 9"))
    assert first.version == "2" and first.parts == {}
    assert edited.digest == first.digest
    bumped = load(tmp_path / "three", top=pinned.replace('version="2"', 'version="3"'))
    assert bumped.digest != first.digest
    assert fingerprint.code_change(first.sidecar_fields(), bumped) == (
        "stage code changed (version '2' -> '3')"
    )


def test_fingerprint_is_computed_once_per_function(tmp_path):
    (tmp_path / "once.py").write_text("def stage_body(record):\n    return 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import once  # type: ignore[import-not-found]

        first = fingerprint.stage_fingerprint(once.stage_body)
        assert fingerprint.stage_fingerprint(once.stage_body) is first
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("once", None)


def test_sidecar_without_fingerprint_is_unknown_not_changed(base):
    assert fingerprint.code_change({"params_hash": "x"}, base) is None
    assert fingerprint.code_change(None, base) is None
    assert fingerprint.code_change(base.sidecar_fields(), base) is None


def test_library_and_framework_modules_are_not_project_code():
    import json

    assert not fingerprint.is_project_module("json") and json
    assert not fingerprint.is_project_module("pandas")
    assert not fingerprint.is_project_module("curifactory_like.stage")
    assert fingerprint.is_project_module(__name__)


def test_bad_policy_is_rejected():
    from curifactory_like.errors import ConfigurationError

    assert fingerprint.check_policy(None, "x") == "rerun"
    with pytest.raises(ConfigurationError, match="rerun, warn, ignore"):
        fingerprint.check_policy("sometimes", "--code-changes")
