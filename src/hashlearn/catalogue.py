"""Every hashing method hashlearn ships, looked up by name.

Importing this module imports each method package, whose ``@register_method`` lines fill
:mod:`hashlearn.registry`; the functions below then answer by name. The CLI, the evaluation
loop and the benchmarks go through here.
"""

from __future__ import annotations

import os
from typing import Any

import hashlearn.quantize  # noqa: F401  (registers sign, lsh, pcah, itq, h2q*, random-rotation)
import hashlearn.shallow  # noqa: F401  (registers ssah, ssah-svd, sdh, fsdh, ksh, cca-itq)
from hashlearn._validation import HashlearnInputError
from hashlearn.base import BaseHasher
from hashlearn.registry import registered_methods


def available_methods() -> list[str]:
    """Sorted names of every registered method."""
    return sorted(registered_methods())


def get_method_class(name: str) -> type:
    """The estimator class registered under ``name``."""
    methods = registered_methods()
    if name not in methods:
        raise HashlearnInputError(
            f"unknown method {name!r}; choose one of: {', '.join(sorted(methods))} "
            "(`hashlearn methods` describes them)."
        )
    return methods[name]


def method_parameters(name: str) -> list[str]:
    """Constructor parameter names of the method registered under ``name``."""
    return list(get_method_class(name)._get_param_names())


def method_description(name: str) -> str:
    """One line describing the method: the first line of its class docstring."""
    return first_line(get_method_class(name).__doc__)


def make_method(name: str, **params: Any) -> BaseHasher:
    """Build the estimator registered under ``name`` with the given parameters."""
    allowed = method_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise HashlearnInputError(
            f"method {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are: {', '.join(allowed)}."
        )
    return get_method_class(name)(**params)


def load_model(path: str | os.PathLike) -> BaseHasher:
    """Load a model saved with ``.save()`` (or ``hashlearn fit``), whatever its method."""
    return BaseHasher.load(path)


def first_line(doc: str | None) -> str:
    """First non-empty line of a docstring, stripped (``""`` when there is none)."""
    for line in (doc or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""
