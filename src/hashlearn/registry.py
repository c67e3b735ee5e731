"""Name → class registry for every hashing method, so the CLI and benchmarks loop over names.

A method module registers its estimator with ``@register_method("name")``; adding a method is
one file plus that one line.
"""

from __future__ import annotations

from typing import Any

from hashlearn._validation import HashlearnInputError

_METHODS: dict[str, type] = {}


def register_method(name: str):
    """Class decorator: make ``cls`` available as ``make_method(name, ...)``."""

    def decorator(cls: type) -> type:
        if name in _METHODS and _METHODS[name] is not cls:
            raise RuntimeError(f"method name {name!r} registered twice")
        _METHODS[name] = cls
        cls.method_name = name
        return cls

    return decorator


def _load_all() -> None:
    # Importing the method packages runs their registrations.
    import hashlearn.quantize  # noqa: F401

    try:
        import hashlearn.shallow  # noqa: F401
    except ImportError:  # pragma: no cover - package may be absent in early versions
        pass


def available_methods() -> list[str]:
    """Sorted names of every registered method."""
    _load_all()
    return sorted(_METHODS)


def get_method_class(name: str) -> type:
    """The estimator class registered under ``name``."""
    _load_all()
    if name not in _METHODS:
        raise HashlearnInputError(
            f"unknown method {name!r}; choose one of: {', '.join(sorted(_METHODS))}."
        )
    return _METHODS[name]


def method_parameters(name: str) -> list[str]:
    """Constructor parameter names of the method registered under ``name``."""
    return list(get_method_class(name)._get_param_names())


def make_method(name: str, **params: Any):
    """Build the estimator registered under ``name`` with the given parameters."""
    allowed = method_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise HashlearnInputError(
            f"method {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are: {', '.join(allowed)}."
        )
    return get_method_class(name)(**params)
