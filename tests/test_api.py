"""The public API: the curated names and the module paths curifactory code imports from."""

from __future__ import annotations

import importlib
import inspect

import curifactory_like as cf

EXPECTED_ALL = {
    "ArtifactManager", "CacheWriteError", "CachersMismatchError", "ConfigurationError",
    "CurifactoryError", "EmptyCachersError", "ExecutingWithSkippedInputError", "ExecutionError",
    "ExperimentError", "StageTimeoutError", "TransientError", "WorkerDiedError",
    "ExperimentParameters", "InputSignatureError", "Lazy", "MissingInputError",
    "NoArtifactManagerError", "OutputSignatureError", "ParameterError", "ParameterFileError",
    "ParameterSelectionError", "Procedure", "Record", "StageError", "UnhashableParameterError",
    "aggregate", "caching", "experiment", "hashing", "manager", "params", "procedure", "record",
    "set_hash_functions", "stage", "staging", "utils", "SweepError", "sweep",
}


def test_all_is_pinned():
    """__all__ lists exactly the curated public names (a change here is an API change)."""
    assert set(cf.__all__) == EXPECTED_ALL
    assert len(cf.__all__) == len(EXPECTED_ALL)


def test_every_public_name_exists():
    """Every name in __all__ is importable from the package."""
    for name in cf.__all__:
        assert getattr(cf, name) is not None


def test_curifactory_module_paths_work():
    """The module paths curifactory projects import from resolve to the same objects."""
    paths = {
        "curifactory_like.caching": ["Lazy", "Cacheable", "JsonCacher", "PickleCacher",
                                     "PandasCacher", "PandasCsvCacher", "PandasJsonCacher",
                                     "FileReferenceCacher", "PathRef"],
        "curifactory_like.staging": ["stage", "aggregate", "InputSignatureError",
                                     "OutputSignatureError", "CachersMismatchError",
                                     "EmptyCachersError", "ExecutingWithSkippedInputError"],
        "curifactory_like.record": ["Record"],
        "curifactory_like.manager": ["ArtifactManager"],
        "curifactory_like.params": ["ExperimentParameters"],
        "curifactory_like.hashing": ["hash_param_set", "param_set_string_hash_representations",
                                     "set_hash_functions"],
        "curifactory_like.procedure": ["Procedure", "NoArtifactManagerError"],
        "curifactory_like.experiment": ["run_experiment"],
        "curifactory_like.utils": ["get_configuration"],
    }
    for module_name, names in paths.items():
        module = importlib.import_module(module_name)
        for name in names:
            assert hasattr(module, name), f"{module_name}.{name}"
    assert cf.staging.stage is cf.stage and cf.caching.Lazy is cf.Lazy


def test_errors_share_one_base():
    """Every exception the package exports derives from CurifactoryError."""
    for name in cf.__all__:
        obj = getattr(cf, name)
        if inspect.isclass(obj) and issubclass(obj, Exception):
            assert issubclass(obj, cf.CurifactoryError), name


def test_run_experiment_signature_starts_like_curifactory():
    """run_experiment takes experiment_name then param_files, as in curifactory."""
    parameters = list(inspect.signature(cf.experiment.run_experiment).parameters)
    assert parameters[:5] == ["experiment_name", "param_files", "overwrite_override",
                              "cache_dir_override", "mngr"]
