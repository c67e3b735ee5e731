"""The errors hashlearn raises on bad input and on files it cannot read or write.

Each is also the standard exception a Python or scikit-learn user would catch for it
(``ValueError``, ``TypeError``, ``OSError``, scikit-learn's ``InvalidParameterError``), and all
derive from :class:`HashlearnError`, so ``except HashlearnError`` catches every one::

    from hashlearn.exceptions import HashlearnError, HashlearnFileError
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "HashlearnError",
    "HashlearnFileError",
    "HashlearnInputError",
    "HashlearnInputTypeError",
    "HashlearnParameterError",  # noqa: F822  (defined on first use, see __getattr__)
    "TrainingDivergedError",
]


class HashlearnError(Exception):
    """Base of every error hashlearn raises on purpose (its message says what to fix)."""


class HashlearnInputError(HashlearnError, ValueError):
    """Raised when an argument has the wrong type, shape or values."""


class HashlearnInputTypeError(HashlearnInputError, TypeError):
    """A :class:`HashlearnInputError` for values of a wrong type (also a ``TypeError``, as
    scikit-learn raises for them)."""


class HashlearnFileError(HashlearnError, OSError):
    """Raised when a file cannot be written, read or parsed (missing, damaged, edited, of
    another format version, locked by another writer, or on a full disk)."""


class TrainingDivergedError(HashlearnInputError):
    """The training loss or the weights became NaN or infinite; the last good checkpoint is
    kept."""


def _parameter_error() -> type:
    # Defined on first use: its second base is scikit-learn's, and importing scikit-learn takes
    # a second that `hashlearn --version` and `--help` must not wait for.
    from sklearn.utils._param_validation import InvalidParameterError

    class HashlearnParameterError(HashlearnInputError, InvalidParameterError):
        """A constructor parameter outside its declared constraints
        (``_parameter_constraints``); also scikit-learn's ``InvalidParameterError``."""

    HashlearnParameterError.__module__ = __name__
    HashlearnParameterError.__qualname__ = "HashlearnParameterError"
    return HashlearnParameterError


def __getattr__(name: str) -> Any:
    if name == "HashlearnParameterError":
        globals()[name] = cls = _parameter_error()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
