"""curifactory's ``staging`` module path: the stage decorators and their errors.

Kept so that code written as ``from curifactory.staging import stage`` ports by renaming the
package; the implementation lives in ``stage`` (declaration) and ``runtime`` (execution).
"""

from .errors import (
    CachersMismatchError,
    EmptyCachersError,
    ExecutingWithSkippedInputError,
    InputSignatureError,
    OutputSignatureError,
)
from .record import SkippedOutput
from .stage import _missing_signature_inputs, aggregate, stage

__all__ = [
    "CachersMismatchError",
    "EmptyCachersError",
    "ExecutingWithSkippedInputError",
    "InputSignatureError",
    "OutputSignatureError",
    "SkippedOutput",
    "_missing_signature_inputs",
    "aggregate",
    "stage",
]
