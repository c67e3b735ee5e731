"""Consistency checks for a model read from a file, so an edited or damaged model fails with
an error that names the file instead of a constructor ``TypeError`` or codes of the wrong length.

The byte-level checks (SHA-256 of every array and of the metadata) live in
:func:`hashlearn._io.load_arrays`; these check what the metadata claims against the class and the
arrays: the method exists and matches the stored class name, the parameters fit its constructor,
and one encoded probe row has the ``n_bits`` the model claims.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from hashlearn._io import HashlearnFileError

_EDITED = "the file was edited or corrupted; re-create it with fit and save()"


def model_class(path: str | os.PathLike, meta: dict, base: type) -> type:
    """The registered class named by the metadata of the model file ``path``."""
    from hashlearn.registry import registered_methods

    method, stored = meta.get("method"), meta.get("class")
    if not method:
        return base
    target = registered_methods().get(method)
    if target is None:
        if "hashlearn.catalogue" not in sys.modules:
            raise HashlearnFileError(
                f"{path} holds a {method!r} model, a method whose module is not imported; "
                "load it with hashlearn.catalogue.load_model(path)."
            )
        raise HashlearnFileError(
            f"{path}: unknown method {method!r} (known: {', '.join(sorted(registered_methods()))})"
            f"; {_EDITED}, or it was written by a newer hashlearn."
        )
    if stored is not None and stored != target.__name__:
        raise HashlearnFileError(
            f"{path}: its metadata names method {method!r} ({target.__name__}) but class "
            f"{stored!r}; {_EDITED}."
        )
    return target


def build_model(path: str | os.PathLike, target: type, params: Any) -> Any:
    """``target(**params)``, with a clear error when the stored parameters do not fit."""
    allowed = target._get_param_names()
    if not isinstance(params, dict) or set(params) - set(allowed):
        extra = sorted(set(params) - set(allowed)) if isinstance(params, dict) else params
        raise HashlearnFileError(
            f"{path}: stored parameters {extra} are not parameters of {target.__name__} "
            f"(it takes {', '.join(allowed)}); {_EDITED}."
        )
    return target(**params)


def check_loaded(path: str | os.PathLike, model: Any) -> None:
    """Check ``n_bits``, ``n_features_in_`` and the learned arrays agree: encode one probe row."""
    n_bits, n_features = getattr(model, "n_bits_", None), getattr(model, "n_features_in_", None)
    for name, value in (("n_bits_", n_bits), ("n_features_in_", n_features)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise HashlearnFileError(f"{path}: {name}={value!r} is not valid; {_EDITED}.")
    requested = getattr(model, "n_bits", None)
    if requested is not None and requested != n_bits:
        raise HashlearnFileError(
            f"{path}: parameter n_bits={requested!r} disagrees with the fitted n_bits_={n_bits}; "
            f"{_EDITED}."
        )
    try:
        probe = np.asarray(model.transform(np.zeros((1, n_features))))
    except Exception as exc:
        raise HashlearnFileError(
            f"{path}: its arrays do not fit together ({type(exc).__name__}: {exc}); {_EDITED}."
        ) from None
    if probe.shape != (1, n_bits):
        raise HashlearnFileError(
            f"{path}: the model claims {n_bits}-bit codes but its arrays give "
            f"{probe.shape[-1] if probe.ndim else 0} bits; {_EDITED}."
        )
