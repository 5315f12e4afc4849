"""The bad-input catalogue: more mistakes, each checked like those of ``test_bad_inputs.py``.

Every case starts from a copy of a project whose ``experiment run tiny`` completed, adds one
mistake (parameter files, experiment files, stage definitions, configuration, command-line
values, filesystem faults, hostile cache paths) and runs the real command once. Each must give
a non-zero exit, an error naming the culprit and the fix, no traceback, and leave every cached
artifact and every registry row of the earlier run exactly as it was, with no partial file.

Filesystem faults: tests run as root, for whom ``chmod`` does not make a directory read-only,
and mounting a small tmpfs needs privileges the test machine may not grant. The command is
therefore run with a ``sitecustomize`` hook (``FAULT_HOOK``) that makes ``open()`` of a file
below a ``cache`` folder fail as the kernel would (ENOSPC on write for a full disk, EROFS on
open for a read-only mount); the product code under test is unchanged. Paths the run cannot
create at all use ``/proc``, where even root cannot make folders.

Damaged cache contents (``DAMAGES``) are not errors: the run warns, naming the file, recomputes
it and succeeds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from _projects import (
    NO_TRACEBACK,
    TINY_EXPERIMENT,
    cache_snapshot,
    command_env,
    copy_project,
    experiment_command,
    output,
    registry_runs,
    run_cli,
    write_source,
    write_tiny,
)
from test_bad_inputs import Case

FAULT_HOOK = '''\
"""Test hook: simulate a full disk or a read-only cache folder for this process."""
import builtins
import errno
import os

_MODE = os.environ.get("CFL_TEST_FAULT")
_MARKER = os.sep + "cache" + os.sep


class _FullDisk:
    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._handle.close()

    def __getattr__(self, name):
        return getattr(self._handle, name)


if _MODE:
    _real_open = builtins.open

    def _faulty_open(file, mode="r", *args, **kwargs):
        try:
            path = os.path.abspath(os.fspath(file))
        except TypeError:
            path = ""
        if _MARKER in path and any(flag in mode for flag in "wax+"):
            if _MODE == "erofs":
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
            return _FullDisk(_real_open(file, mode, *args, **kwargs))
        return _real_open(file, mode, *args, **kwargs)

    builtins.open = _faulty_open
'''

STAGE_TAIL = """

{definition}


def run(param_sets, manager):
    for param_set in param_sets:
        {call}(square(double(make(cf.Record(manager, param_set)))))
"""


def extra_stage(definition: str, call: str) -> dict[str, str]:
    """The tiny experiment with one more stage after ``square``."""
    source = TINY_EXPERIMENT + STAGE_TAIL.format(definition=definition.strip(), call=call)
    return {"experiments/tiny.py": source}


def params_file(name: str, body: str) -> dict[str, str]:
    """A parameter file reusing the tiny experiment's ``Params`` class."""
    return {f"params/{name}.py": "from params.tiny import Params\n\n\n" + body}


CATALOGUE = [
    # ---------------------------------------------------------------- parameter files
    Case(
        "duplicate_names_in_one_file",
        ("run", "tiny", "-p", "dup"),
        ("named 'a'", "parameter file 'dup'", "unique name"),
        params_file(
            "dup", 'def get_params():\n    return [Params(name="a", n=1), Params(name="a", n=2)]\n'
        ),
    ),
    Case(
        "duplicate_names_across_files",
        ("run", "tiny", "-p", "tiny", "-p", "clash"),
        ("named 'a'", "'tiny'", "'clash'", "unique name"),
        params_file("clash", 'def get_params():\n    return [Params(name="a", n=9)]\n'),
    ),
    Case(
        "non_dataclass_item",
        ("run", "tiny", "-p", "nondc"),
        ("nondc", "returned int at index 0", "ExperimentParameters"),
        {"params/nondc.py": "def get_params():\n    return [1, 2]\n"},
    ),
    Case(
        "plain_dataclass_item",
        ("run", "tiny", "-p", "plain"),
        ("plain", "index 0", "ExperimentParameters"),
        {
            "params/plain.py": "from dataclasses import dataclass\n\n\n@dataclass\nclass P:\n"
            "    name: str = 'x'\n\n\ndef get_params():\n    return [P()]\n"
        },
    ),
    Case(
        "get_params_requires_an_argument",
        ("run", "tiny", "-p", "needsarg"),
        ("needsarg", "missing 1 required positional argument", "fix it"),
        params_file("needsarg", "def get_params(size):\n    return [Params(name='s', n=size)]\n"),
    ),
    Case(
        "parameter_file_imports_missing_module",
        ("run", "tiny", "-p", "badimport"),
        ("badimport", "nosuchmodule"),
        {"params/badimport.py": "import nosuchmodule\n\n\ndef get_params():\n    return []\n"},
    ),
    Case(
        "unhashable_reference_cycle",
        ("run", "tiny", "-p", "cycle"),
        ("'cycle'", "reference cycle", "set_hash_functions"),
        {
            "params/cycle.py": "from dataclasses import dataclass, field\n\nimport curifactory_like"
            " as cf\n\n\n@dataclass\nclass P(cf.ExperimentParameters):\n    items: list = "
            "field(default_factory=list)\n\n\ndef get_params():\n    p = P(name='cycle')\n"
            "    p.items.append(p.items)\n    return [p]\n"
        },
    ),
    Case(
        "unhashable_object_inside_a_dict",
        ("run", "tiny", "-p", "deep"),
        ("'deep'", "memory address", "__repr__"),
        {
            "params/deep.py": "from dataclasses import dataclass, field\n\nimport curifactory_like"
            " as cf\n\n\nclass Opaque:\n    pass\n\n\n@dataclass\nclass P(cf.ExperimentParameters):"
            "\n    options: dict = field(default_factory=dict)\n\n\ndef get_params():\n"
            "    return [P(name='deep', options={'model': Opaque()})]\n"
        },
    ),
    Case(
        "parameter_file_not_found",
        ("run", "tiny", "-p", "nosuch"),
        ("parameter file 'nosuch' not found", "experiment ls"),
    ),
    # ---------------------------------------------------------------- experiment files
    Case(
        "experiment_without_run",
        ("run", "norun"),
        ("experiment 'norun'", "no run() function", "def run(param_sets, manager)"),
        {"experiments/norun.py": '"""Forgot run()."""\n\nVALUE = 1\n'},
    ),
    Case(
        "experiment_without_run_with_params",
        ("run", "norun", "-p", "tiny"),
        ("experiment 'norun'", "no run() function", "def run(param_sets, manager)"),
        {"experiments/norun.py": '"""Forgot run()."""\n\nVALUE = 1\n'},
    ),
    Case(
        "experiment_syntax_error",
        ("run", "broken", "-p", "tiny"),
        ("broken", "SyntaxError", "fix that file"),
        {"experiments/broken.py": "def run(param_sets, manager:\n    pass\n"},
    ),
    Case(
        "experiment_imports_missing_module",
        ("run", "badimport", "-p", "tiny"),
        ("badimport", "nosuchmodule", "fix that file"),
        {
            "experiments/badimport.py": "import nosuchmodule\n\n\ndef run(param_sets, manager):\n    pass\n"
        },
    ),
    Case(
        "run_raises_while_mapping",
        ("run", "maperr", "-p", "tiny"),
        ("maperr.py:3", "(run)", "boom in run"),
        {
            "experiments/maperr.py": "def run(param_sets, manager):\n    values = []\n"
            '    raise RuntimeError("boom in run")\n'
        },
    ),
    Case(
        "run_with_wrong_signature",
        ("run", "onearg", "-p", "tiny"),
        ("onearg.py", "run()", "def run(param_sets, manager)"),
        {"experiments/onearg.py": "def run(param_sets):\n    pass\n"},
    ),
    # ---------------------------------------------------------------- stage definitions
    Case(
        "stage_signature_has_undeclared_parameter",
        ("run", "tiny"),
        ("stage 'summarise'", "'extra'", "inputs=[...]"),
        extra_stage(
            """
@cf.stage(inputs=["z"], outputs=["summary"], cachers=[JsonCacher])
def summarise(record, z, extra):
    return z
""",
            "summarise",
        ),
    ),
    Case(
        "cachers_and_outputs_count_mismatch",
        ("run", "tiny"),
        ("pair", "cachers", "outputs"),
        extra_stage(
            """
@cf.stage(inputs=["z"], outputs=["w", "v"], cachers=[JsonCacher])
def pair(record, z):
    return z, z
""",
            "pair",
        ),
    ),
    Case(
        "empty_cachers_list",
        ("run", "tiny"),
        ("nothing", "cachers=[]"),
        extra_stage(
            """
@cf.stage(inputs=["z"], outputs=["w"], cachers=[])
def nothing(record, z):
    return z
""",
            "nothing",
        ),
    ),
    Case(
        "input_never_produced",
        ("run", "tiny"),
        ("needs_q", "'q'"),
        extra_stage(
            """
@cf.stage(inputs=["q"], outputs=["w"], cachers=[JsonCacher])
def needs_q(record, q):
    return q
""",
            "needs_q",
        ),
    ),
    Case(
        "too_many_returned_values",
        ("run", "tiny"),
        ("'triple'", "returned 3 values", "return one value per output"),
        extra_stage(
            """
@cf.stage(inputs=["z"], outputs=["w", "v"], cachers=[JsonCacher, JsonCacher])
def triple(record, z):
    return z, z, z
""",
            "triple",
        ),
    ),
    Case(
        "output_name_escapes_cache",
        ("run", "tiny"),
        ("escapes the cache directory", "../evil", "without '..'"),
        extra_stage(
            """
@cf.stage(inputs=["z"], outputs=["../evil"], cachers=[JsonCacher])
def evil(record, z):
    return z
""",
            "evil",
        ),
    ),
    Case(
        "cacher_subdir_is_absolute",
        ("run", "tiny"),
        ("escapes the cache directory", "/tmp", "absolute paths"),
        extra_stage(
            """
@cf.stage(inputs=["z"], outputs=["w"], cachers=[JsonCacher(subdir="/tmp")])
def absolute(record, z):
    return z
""",
            "absolute",
        ),
    ),
    # ---------------------------------------------------------------- configuration
    Case(
        "config_is_not_an_object",
        ("run", "tiny"),
        ("curifactory_config.json", "object"),
        {"curifactory_config.json": "[1, 2]\n"},
    ),
    Case(
        "config_value_of_wrong_type",
        ("run", "tiny"),
        ("curifactory_config.json", "cache_path"),
        {"curifactory_config.json": '{"cache_path": 5}\n'},
    ),
    Case(
        "config_cache_path_cannot_be_created",
        ("run", "tiny"),
        ("cache_path folder '/proc/cfl-nowhere/cache'", "set cache_path"),
        {"curifactory_config.json": '{"cache_path": "/proc/cfl-nowhere/cache"}\n'},
    ),
    Case(
        "config_manager_cache_path_cannot_be_created",
        ("run", "tiny"),
        ("/proc/cfl-nowhere", "manager_cache_path"),
        {"curifactory_config.json": '{"manager_cache_path": "/proc/cfl-nowhere"}\n'},
    ),
    # ---------------------------------------------------------------- command-line values
    Case(
        "indices_not_a_number",
        ("run", "tiny", "--indices", "abc"),
        ("--indices", "'abc'", "e.g. --indices 0-3"),
    ),
    Case(
        "indices_open_range",
        ("run", "tiny", "--indices", "1-"),
        ("--indices", "'1-'", "A < B"),
    ),
    Case(
        "indices_out_of_range",
        ("run", "tiny", "--indices", "7"),
        ("--indices 7", "selects no parameter set", "0 to len(get_params())-1"),
    ),
    Case(
        "global_indices_out_of_range",
        ("run", "tiny", "--global-indices", "9"),
        ("--global-indices 9", "out of range", "valid: 0 to 2"),
    ),
    Case(
        "parallel_zero",
        ("run", "tiny", "--parallel", "0"),
        ("--parallel 0", ">= 1"),
    ),
    Case(
        "prefix_escapes_cache",
        ("run", "tiny", "--prefix", "../escape"),
        ("'../escape'", "escapes the cache directory", "without '..'"),
    ),
    Case(
        "prefix_is_absolute",
        ("run", "tiny", "--prefix", "/tmp/cfl-abs"),
        ("'/tmp/cfl-abs'", "escapes the cache directory", "absolute paths"),
    ),
    Case(
        "experiment_name_with_path",
        ("run", "../tiny"),
        ("experiment '../tiny' not found", "experiment ls"),
    ),
    Case(
        "unknown_stage_among_known_for_overwrite",
        ("run", "tiny", "--overwrite-stage", "make", "--overwrite-stage", "nosuch"),
        ("'nosuch'", "no stage", "double, make, square"),
    ),
    # ---------------------------------------------------------------- filesystem faults
    Case(
        "disk_full_while_overwriting",
        ("run", "tiny", "--overwrite-stage", "square", "env:CFL_TEST_FAULT=enospc"),
        ("stage 'square'", "No space left on device", "free some disk space"),
    ),
    Case(
        "read_only_cache_while_overwriting",
        ("run", "tiny", "--overwrite-stage", "square", "env:CFL_TEST_FAULT=erofs"),
        ("stage 'square'", "Read-only file system", "make the cache folder writable"),
    ),
    Case(
        "disk_full_for_a_new_artifact",
        ("run", "tiny", "env:CFL_TEST_FAULT=enospc"),
        ("'cube'", "No space left on device", "free some disk space"),
        extra_stage(
            """
@cf.stage(inputs=["z"], outputs=["w"], cachers=[JsonCacher])
def cube(record, z):
    return z ** 3
""",
            "cube",
        ),
    ),
]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project after a successful `experiment run tiny` (three sets, nine artifacts)."""
    root = write_tiny(tmp_path_factory.mktemp("good"))
    result = run_cli(root, "run", "tiny", "--quiet")
    assert result.returncode == 0, output(result)
    return root


def _run(root: Path, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Run the command; ``env:NAME=VALUE`` arguments set variables and enable the fault hook."""
    env = command_env()
    command = []
    for arg in args:
        if arg.startswith("env:"):
            name, _, value = arg[4:].partition("=")
            env[name] = value
        else:
            command.append(arg)
    if any(arg.startswith("env:") for arg in args):
        hook = root.parent / f"{root.name}-hook"
        write_source(hook, "sitecustomize.py", FAULT_HOOK)
        env["PYTHONPATH"] = f"{hook}:{env['PYTHONPATH']}"
    return subprocess.run(
        [*experiment_command(), *command],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module", params=CATALOGUE, ids=[case.id for case in CATALOGUE])
def outcome(request, good: Path, tmp_path_factory: pytest.TempPathFactory):
    """Run one case in a copy of the good project; its result and before/after snapshots."""
    case: Case = request.param
    root = tmp_path_factory.mktemp(case.id)
    copy_project(good, root)
    cache = root / "data" / "cache"
    before = (cache_snapshot(cache), sorted(p.name for p in cache.iterdir()), registry_runs(root))
    for relative, source in case.files.items():
        write_source(root, relative, source)
    result = _run(root, case.args)
    after = (cache_snapshot(cache), sorted(p.name for p in cache.iterdir()), registry_runs(root))
    return case, result, before, after


def test_catalogue_size():
    """The catalogue and the earlier cases together try at least 30 bad inputs."""
    from test_bad_inputs import CASES

    assert len(CATALOGUE) + len(CASES) >= 30
    assert len({case.id for case in CATALOGUE} | {case.id for case in CASES}) == len(
        CATALOGUE
    ) + len(CASES)


def test_exits_non_zero(outcome):
    """The command fails with a non-zero status."""
    _, result, _, _ = outcome
    assert result.returncode != 0, output(result)


def test_error_names_culprit_and_fix(outcome):
    """The output names the culprit and how to fix it."""
    case, result, _, _ = outcome
    text = output(result)
    assert [part for part in case.culprit if part not in text] == [], text


def test_no_traceback(outcome):
    """No Python traceback without --verbose."""
    _, result, _, _ = outcome
    assert NO_TRACEBACK not in output(result)


def test_cache_and_registry_intact(outcome):
    """Every artifact, sidecar and registry row of the earlier run is exactly as before."""
    _, _, (cache_before, names_before, runs_before), (cache_after, names_after, runs_after) = (
        outcome
    )
    assert cache_after == cache_before
    assert names_after == names_before  # nothing partial or temporary was left behind
    assert runs_after[: len(runs_before)] == runs_before
    assert all(run["status"] != "complete" for run in runs_after[len(runs_before) :])


def test_verbose_shows_traceback_for_disk_full(good: Path, tmp_path: Path):
    """--verbose adds the traceback to the disk-full error."""
    [case] = [c for c in CATALOGUE if c.id == "disk_full_while_overwriting"]
    copy_project(good, tmp_path / "proj")
    result = _run(tmp_path / "proj", (*case.args, "--verbose"))
    assert result.returncode != 0
    assert NO_TRACEBACK in output(result)


# -------------------------------------------------------------------- damaged cache contents

DAMAGES = {
    "truncated": lambda data, sidecar: (data[: len(data) // 2], sidecar),
    "corrupted": lambda data, sidecar: (
        data.replace(b"1", b"7") if b"1" in data else b"7",
        sidecar,
    ),
    "wrong_type": lambda data, sidecar: (b"\x80\x04\x95not json at all", sidecar),
    "empty": lambda data, sidecar: (b"", sidecar),
    "missing_sidecar": lambda data, sidecar: (data, None),
    "sidecar_not_json": lambda data, sidecar: (data, b"{half a sidecar"),
    "sidecar_from_another_version": lambda data, sidecar: (
        data,
        json.dumps({**json.loads(sidecar), "sidecar_version": 999}).encode(),
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("stage", ["make", "double"])
def test_damaged_cache_is_recomputed_with_warning(
    damage: str,
    stage: str,
    good: Path,
    tmp_path: Path,
):
    """A damaged artifact is not an error: warned about by name, recomputed, run succeeds.

    The run overwrites the stage after the damaged one, so it must read the damaged artifact:
    it is verified against its sidecar (size and checksum) before loading, found damaged,
    named in a warning and recomputed, and ends up byte-identical to the original.
    """
    root = tmp_path / "proj"
    copy_project(good, root)
    cache = root / "data" / "cache"
    output_name, reader = {"make": ("x", "double"), "double": ("y", "square")}[stage]
    artifact = next(cache.glob(f"tiny_*_{stage}_{output_name}.json"))
    sidecar = artifact.with_name(artifact.stem + "_metadata.json")
    original = artifact.read_bytes()
    data, metadata = DAMAGES[damage](original, sidecar.read_bytes())
    artifact.write_bytes(data)
    if metadata is None:
        sidecar.unlink()
    else:
        sidecar.write_bytes(metadata)

    result = run_cli(root, "run", "tiny", "--overwrite-stage", reader)
    text = output(result)
    assert result.returncode == 0, text
    assert NO_TRACEBACK not in text
    assert artifact.name in text and "integrity check" in text and "recomputing it" in text, text
    assert artifact.read_bytes() == original
    assert registry_runs(root)[-1]["status"] == "complete"


@pytest.mark.parametrize("damage", sorted(set(DAMAGES) - {"corrupted"}))
def test_damage_to_an_artifact_the_run_does_not_read_is_named(
    damage: str,
    good: Path,
    tmp_path: Path,
):
    """Damage visible without reading the artifact (size, sidecar) is named even when skipped."""
    root = tmp_path / "proj"
    copy_project(good, root)
    cache = root / "data" / "cache"
    artifact = next(cache.glob("tiny_*_double_y.json"))
    sidecar = artifact.with_name(artifact.stem + "_metadata.json")
    data, metadata = DAMAGES[damage](artifact.read_bytes(), sidecar.read_bytes())
    artifact.write_bytes(data)
    if metadata is None:
        sidecar.unlink()
    else:
        sidecar.write_bytes(metadata)
    result = run_cli(root, "run", "tiny")
    text = output(result)
    assert result.returncode == 0, text
    assert artifact.name in text and "does not need it" in text, text


NESTED_STAGE = """
import curifactory_like as cf
from curifactory_like.caching import JsonCacher
from experiments.tiny import make


@cf.stage(outputs=["w"], cachers=[JsonCacher])
def outer(record):
    return make(record).state["x"] + 1


def run(param_sets, manager):
    for param_set in param_sets:
        outer(cf.Record(manager, param_set))
"""


def test_stage_called_inside_a_stage_is_warned_about(good: Path, tmp_path: Path):
    """A stage called from another stage's body works as in curifactory, with a warning that
    names both stages (curifactory warns too; refusing it would break ported code)."""
    root = tmp_path / "proj"
    copy_project(good, root)
    write_source(root, "experiments/nested.py", NESTED_STAGE)
    result = run_cli(root, "run", "nested", "-p", "tiny")
    text = output(result)
    assert result.returncode == 0, text
    assert "Stage 'make' executed while another stage ('outer') was already running" in text
    assert NO_TRACEBACK not in text
