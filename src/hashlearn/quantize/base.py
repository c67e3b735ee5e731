"""Shared estimator base for every hashing method that maps features to codes.

Follows scikit-learn's conventions: ``__init__`` only stores parameters, ``fit`` validates and
learns attributes ending in ``_``, ``transform`` returns the continuous projections whose signs
are the bits, ``encode`` returns packed ``uint8`` codes (see :mod:`hashlearn.codes`).
Models are saved to ``.npz`` + JSON without pickle.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from hashlearn._io import HashlearnFileError, load_arrays, save_arrays
from hashlearn._scaling import check_finite_projection
from hashlearn._validation import check_features
from hashlearn.codes import pack

FORMAT_VERSION = 1


class BaseQuantizer(TransformerMixin, BaseEstimator):
    """Base class: subclasses implement ``fit`` and ``_project``.

    Class attributes:
        requires_labels: True for supervised methods, whose ``fit`` needs ``y``.
    """

    requires_labels: bool = False

    def transform(self, X: Any) -> np.ndarray:
        """Continuous codes (n_samples, n_bits); their signs are the bits."""
        check_is_fitted(self)
        X = check_features(X, "X", n_features=self.n_features_in_)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below
            Z = self._project(X)
        return check_finite_projection(Z, X)

    def encode(self, X: Any) -> np.ndarray:
        """Packed binary codes, ``uint8`` of shape (n_samples, ceil(n_bits / 8))."""
        return pack(self.transform(X))

    def _project(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- persistence ---------------------------------------------------------------------------
    def _fitted_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {}
        scalars: dict[str, Any] = {}
        for key, value in vars(self).items():
            if not key.endswith("_") or key.startswith("_"):
                continue
            if isinstance(value, np.ndarray):
                arrays[key] = value
            elif isinstance(value, (list, tuple)) and all(
                isinstance(v, (int, float, np.number)) for v in value
            ):
                arrays[key] = np.asarray(value)
                scalars[f"{key}__aslist"] = True
            elif value is None or isinstance(value, (bool, int, float, str, np.number)):
                scalars[key] = value.item() if isinstance(value, np.generic) else value
        return arrays, scalars

    def save(self, path: str | os.PathLike) -> None:
        """Save parameters and learned state to ``path`` (``.npz``, no pickle), atomically."""
        check_is_fitted(self)
        arrays, scalars = self._fitted_state()
        meta = {
            "format_version": FORMAT_VERSION,
            "class": type(self).__name__,
            "method": getattr(self, "method_name", None),
            "params": self.get_params(deep=False),
            "scalars": scalars,
        }
        save_arrays(path, arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BaseQuantizer:
        """Load a model saved with :meth:`save`. On a base class, dispatch on the stored method.

        The stored method's module must be imported; :func:`hashlearn.catalogue.load_model`
        imports every method and loads any model.
        """
        from hashlearn._model_checks import build_model, check_loaded, model_class

        arrays, meta = load_arrays(path)
        if meta.get("format_version") != FORMAT_VERSION or "params" not in meta:
            raise HashlearnFileError(f"{path} is not a hashlearn model file (no format version).")
        target = model_class(path, meta, cls)
        if not issubclass(target, cls):
            raise HashlearnFileError(
                f"{path} holds a {meta['class']} model, not a {cls.__name__}; "
                f"load it with {meta['class']}.load()."
            )
        model = build_model(path, target, meta["params"])
        scalars = dict(meta.get("scalars") or {})
        for key, value in arrays.items():
            if scalars.pop(f"{key}__aslist", False):
                value = value.tolist()
            setattr(model, key, value)
        for key, value in scalars.items():
            setattr(model, key, value)
        check_loaded(path, model)
        return model
