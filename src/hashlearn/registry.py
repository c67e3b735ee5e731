"""Name → class registry of the hashing methods: a plain dict and the decorator that fills it.

A method module registers its estimator with ``@register_method("name")``; adding a method is
one file plus that one line, plus one import in :mod:`hashlearn.catalogue`, which imports every
method module and is where names are looked up (``make_method``, ``available_methods``). This
module imports nothing else from hashlearn, so any method module can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TypeVar

_T = TypeVar("_T", bound=type)

_METHODS: dict[str, type] = {}


def register_method(name: str) -> Callable[[_T], _T]:
    """Class decorator: register ``cls`` under ``name`` and set ``cls.method_name = name``."""

    def decorator(cls: _T) -> _T:
        if name in _METHODS and _METHODS[name] is not cls:
            raise RuntimeError(f"method name {name!r} registered twice")
        _METHODS[name] = cls
        cls.method_name = name
        return cls

    return decorator


def registered_methods() -> Mapping[str, type]:
    """Read-only view of the methods registered by the modules imported so far.

    Use :func:`hashlearn.catalogue.available_methods` for every method hashlearn ships.
    """
    return MappingProxyType(_METHODS)
