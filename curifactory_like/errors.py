"""The one exception tree of curifactory_like, and its warnings.

::

    CurifactoryError                       base of every error raised on purpose
     +-- ConfigurationError                curifactory_config.json unreadable or invalid
     +-- ParameterError                    a parameter file or parameter set is unusable
     |    +-- ParameterFileError           missing file, no get_params(), wrong return type
     |    +-- ParameterSelectionError      unknown --names value, bad --indices range
     |    +-- UnhashableParameterError     a value the canonical hash cannot encode
     |    +-- SweepError                   cf.sweep(): unknown field, empty/unequal lists
     +-- ExperimentError                   the experiment module is missing or malformed
     +-- StageError                        a stage is declared or called wrongly
     |    +-- InputSignatureError          inputs=[...] and the signature disagree
     |    +-- OutputSignatureError         outputs=[...] and the returned values disagree
     |    +-- CachersMismatchError         len(cachers) != len(outputs)
     |    +-- EmptyCachersError            cachers=[] (would always short-circuit)
     |    +-- ExecutingWithSkippedInputError   a skipped input was needed after all
     |    +-- MissingInputError            an input is neither in record state nor passed
     |    +-- UnknownStageError            --overwrite-stage names no stage of the experiment
     +-- CacheError                        the cache cannot be used
     |    +-- CacheWriteError              a cacher could not write its object
     |    +-- CachePathError               a path escapes the cache directory
     +-- NoArtifactManagerError            a Procedure was run without a manager
     +-- RunStoreError                     the SQLite run registry cannot be used
     |    +-- RunAlreadyRegisteredError    an imported run's reference is already registered
     +-- RunReferenceError                 a run reference names no run (or several)
     +-- ExecutionError                    a scheduled stage call failed
     |    +-- StageTimeoutError            a stage call ran past its timeout
     |    +-- WorkerDiedError              the process running a stage call died
     +-- RunFolderError                    a --store-full run folder is missing, incomplete or
     |                                     corrupted (names the file)
     +-- ArchiveError                      a run archive is unusable or unsafe to extract
     +-- TransientError                    raise it (or subclass it) in a stage for a failure
                                           worth retrying (network, busy resource); only these
                                           are retried by ``retries=`` unless told otherwise

``MissingInputError`` is also a ``KeyError`` and ``UnhashableParameterError`` also a
``TypeError``, so code written against curifactory that catches those keeps working.

Warnings: ``CacheIntegrityWarning`` (a cached artifact failed its size/checksum check and is
recomputed) and ``CurifactoryWarning`` (everything else that is worth seeing but not fatal).
"""

from __future__ import annotations


class CurifactoryError(Exception):
    """Base class of every error curifactory_like raises on purpose.

    ``hint`` carries the where-and-how-to-fix detail when the first line must stay exactly as
    curifactory worded it; ``detailed()`` joins both and is what the CLI prints.
    """

    def __init__(self, *args: object, hint: str | None = None):
        super().__init__(*args)
        self.hint = hint

    def detailed(self) -> str:
        """The message followed by the hint, if any."""
        text = str(self)
        return f"{text}\n  {self.hint}" if self.hint else text


class ConfigurationError(CurifactoryError):
    """curifactory_config.json cannot be read or holds an invalid value."""


class ParameterError(CurifactoryError, RuntimeError):
    """A parameter file or parameter set cannot be used (a RuntimeError, as in curifactory)."""


class ParameterFileError(ParameterError):
    """A parameter file is missing, has no get_params(), or returns the wrong thing."""


class ParameterSelectionError(ParameterError):
    """A --names / --indices / --global-indices selection matches nothing or is malformed."""


class UnhashableParameterError(ParameterError, TypeError):
    """A parameter value has no stable canonical encoding (e.g. a default object repr)."""


class ExperimentError(CurifactoryError, RuntimeError):
    """The experiment module cannot be found, imported or has no run()."""


class StageError(CurifactoryError):
    """A stage is declared or called in a way that cannot work."""


class InputSignatureError(StageError):
    """A stage's declared inputs do not match its function signature."""


class OutputSignatureError(StageError):
    """A stage returned a different number of values than it declared outputs."""


class CachersMismatchError(StageError):
    """A stage declares a different number of cachers than outputs."""


class EmptyCachersError(StageError):
    """A stage declares ``cachers=[]``, which would always short-circuit."""


class ExecutingWithSkippedInputError(StageError):
    """A stage must execute but one of its inputs was skipped by the plan."""


class MissingInputError(StageError, KeyError):
    """A stage input is not in the record state and was not passed to the call."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class UnknownStageError(StageError):
    """A stage named on the command line (e.g. --overwrite-stage) is not in the experiment."""


class CacheError(CurifactoryError):
    """The cache cannot be used as asked."""


class CacheWriteError(CacheError):
    """A cacher could not write its object; nothing partial is left behind."""


class CachePathError(CacheError):
    """An artifact name, prefix or subdir would place a file outside the cache directory."""


class NoArtifactManagerError(CurifactoryError):
    """A Procedure was run without an ArtifactManager."""


class RunStoreError(CurifactoryError):
    """The SQLite run registry cannot be opened or written."""


class RunAlreadyRegisteredError(RunStoreError):
    """A run reference being added to the registry is already in it (``experiment import``)."""


class ExecutionError(CurifactoryError):
    """A stage call scheduled on an executor failed (its message names the call)."""


class StageTimeoutError(ExecutionError):
    """A stage call ran longer than its ``timeout=``."""


class WorkerDiedError(ExecutionError):
    """The worker process running a stage call died (killed, crashed, out of memory)."""


class TransientError(CurifactoryError):
    """A failure worth retrying; ``@stage(retries=N)`` retries only these by default."""


class CurifactoryWarning(UserWarning):
    """Something worth seeing that does not stop the run."""


class CacheIntegrityWarning(CurifactoryWarning):
    """A cached artifact failed its integrity check and will be recomputed."""


class SweepError(ParameterError):
    """``cf.sweep`` was given an unknown field, an empty or unequal list, or a field twice."""


class RunReferenceError(CurifactoryError):
    """A run reference (``experiment pin REF``) names no run, or several, in the registry."""


class RunFolderError(CurifactoryError):
    """A ``--store-full`` run folder is missing, incomplete or corrupted (names the file)."""


class ArchiveError(CurifactoryError):
    """A run archive (``experiment export`` / ``import``) is unusable or unsafe to extract."""
