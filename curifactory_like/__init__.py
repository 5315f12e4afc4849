"""curifactory_like: parameterised experiments with a hashed artifact cache.

The classic curifactory API under a new name: ``import curifactory_like as cf`` and use
``cf.ExperimentParameters``, ``cf.Record``, ``@cf.stage``, ``@cf.aggregate``, ``cf.Lazy``,
``cf.ArtifactManager`` and ``cf.Procedure`` as in curifactory.
"""

from . import caching, experiment, hashing, manager, params, procedure, record, staging, utils
from .caching import Lazy
from .errors import (
    CachersMismatchError,
    CacheWriteError,
    ConfigurationError,
    CurifactoryError,
    EmptyCachersError,
    ExecutingWithSkippedInputError,
    ExecutionError,
    ExperimentError,
    InputSignatureError,
    MissingInputError,
    NoArtifactManagerError,
    OutputSignatureError,
    ParameterError,
    ParameterFileError,
    ParameterSelectionError,
    StageError,
    StageTimeoutError,
    SweepError,
    TransientError,
    UnhashableParameterError,
    WorkerDiedError,
)
from .hashing import set_hash_functions
from .manager import ArtifactManager
from .params import ExperimentParameters
from .procedure import Procedure
from .record import Record
from .stage import aggregate, stage
from .sweep import sweep

__version__ = "0.1.0"

__all__ = [
    "ArtifactManager",
    "CacheWriteError",
    "CachersMismatchError",
    "ConfigurationError",
    "CurifactoryError",
    "EmptyCachersError",
    "ExecutingWithSkippedInputError",
    "ExecutionError",
    "ExperimentError",
    "ExperimentParameters",
    "InputSignatureError",
    "Lazy",
    "MissingInputError",
    "NoArtifactManagerError",
    "OutputSignatureError",
    "ParameterError",
    "ParameterFileError",
    "ParameterSelectionError",
    "Procedure",
    "Record",
    "StageError",
    "StageTimeoutError",
    "SweepError",
    "TransientError",
    "UnhashableParameterError",
    "WorkerDiedError",
    "aggregate",
    "caching",
    "experiment",
    "hashing",
    "manager",
    "params",
    "procedure",
    "record",
    "set_hash_functions",
    "stage",
    "staging",
    "sweep",
    "utils",
]
