"""The estimator contract shared by every registered hashing method.

Every method (the quantizers in :mod:`hashlearn.quantize`, the supervised shallow methods in
:mod:`hashlearn.shallow`) is a scikit-learn transformer built on :class:`BaseHasher`:

- ``__init__`` only stores parameters; their valid values are declared once in
  ``_parameter_constraints`` and checked by scikit-learn when ``fit`` starts
  (``@_fit_context``), failing with :class:`~hashlearn._validation.HashlearnParameterError`.
- ``fit(X, y=None)`` validates ``X`` with scikit-learn's ``validate_data`` (through
  :func:`~hashlearn._validation.check_features`, which words the errors with their fix) and
  learns attributes ending in ``_``; ``transform`` returns the continuous projections whose
  signs are the bits, ``encode`` the packed ``uint8`` codes (:mod:`hashlearn.codes`).
- Supervised methods say so with scikit-learn's tag ``target_tags.required``
  (:class:`SupervisedMixin`; query it with :func:`needs_labels`).
- Models are saved to ``.npz`` + JSON without pickle.
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import get_tags
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from hashlearn._io import HashlearnFileError, load_arrays, save_arrays, version_refused
from hashlearn._labels import check_labels
from hashlearn._model_checks import build_model, check_loaded, model_class
from hashlearn._scaling import check_finite_projection
from hashlearn._validation import HashlearnInputError, HashlearnParameterError, check_features
from hashlearn.codes import pack

FORMAT_VERSION = 1

# Parameter constraints shared by the methods' ``_parameter_constraints``.
POSITIVE_INT = Interval(Integral, 1, None, closed="left")
NON_NEGATIVE_INT = Interval(Integral, 0, None, closed="left")
POSITIVE = Interval(Real, 0, None, closed="neither")
NON_NEGATIVE = Interval(Real, 0, None, closed="left")


def needs_labels(estimator: Any) -> bool:
    """True when ``estimator`` (an instance or a class) needs labels ``y`` in ``fit``.

    Reads scikit-learn's tag ``target_tags.required``; a class is asked through a default
    instance.
    """
    if isinstance(estimator, type):
        estimator = estimator()
    return bool(get_tags(estimator).target_tags.required)


class ParameterChecksMixin:
    """scikit-learn's check of ``_parameter_constraints`` (run by ``@_fit_context``), failing
    with :class:`HashlearnParameterError`. Put it before ``BaseEstimator`` in the bases."""

    _parameter_constraints: dict = {}

    def _validate_params(self) -> None:
        try:
            super()._validate_params()
        except InvalidParameterError as exc:
            raise HashlearnParameterError(str(exc)) from None


class BaseHasher(ParameterChecksMixin, TransformerMixin, BaseEstimator):
    """Base class: subclasses declare ``_parameter_constraints`` and implement ``fit`` (decorated
    with ``@_fit_context``) and ``_project``."""

    def _check_X(self, X: Any, *, reset: bool, min_samples: int = 1) -> np.ndarray:
        """Validated features; ``reset=True`` (in ``fit``) records ``n_features_in_``."""
        return check_features(X, "X", min_samples=min_samples, estimator=self, reset=reset)

    def _resolve_n_bits(self, n_features: int, *, bounded: bool = True) -> int:
        """``n_bits``, defaulting to the input dimension; ``bounded``: at most that dimension."""
        n_bits = n_features if self.n_bits is None else int(self.n_bits)
        if bounded and n_bits > n_features:
            raise HashlearnInputError(
                f"n_bits={n_bits} is larger than the {n_features} available dimensions of X "
                f"(n_features={n_features}); use n_bits <= {n_features}."
            )
        return n_bits

    def check_fit_shape(self, n_samples: int, n_features: int) -> None:
        """Raise now the error ``fit`` would raise on ``n_samples`` x ``n_features`` training
        data because of the parameters alone (invalid values, ``n_bits`` above the feature
        count, more anchors than rows), without fitting anything.

        Lets a grid of fits (``hashlearn evaluate``, :func:`hashlearn.evaluation.evaluate_grid`)
        refuse a bad cell before its first, possibly long, fit. Subclasses add their own shape
        limits; errors that depend on the values of the data still come from ``fit``.
        """
        self._validate_params()
        if self._n_bits_bounded():
            self._resolve_n_bits(n_features)

    def _n_bits_bounded(self) -> bool:
        """Whether ``n_bits`` may not exceed the input dimension (see :meth:`_resolve_n_bits`)."""
        return False

    def transform(self, X: Any) -> np.ndarray:
        """Continuous codes (n_samples, n_bits); their signs are the bits."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
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
            if isinstance(value, np.ndarray) and value.dtype == object:
                arrays[key] = value.astype(str)  # e.g. feature_names_in_
                scalars[f"{key}__asobject"] = True
            elif isinstance(value, np.ndarray):
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
    def load(cls, path: str | os.PathLike) -> BaseHasher:
        """Load a model saved with :meth:`save`. On a base class, dispatch on the stored method.

        The stored method's module must be imported; :func:`hashlearn.catalogue.load_model`
        imports every method and loads any model.
        """
        _refuse_plain_npy(path)
        arrays, meta = load_arrays(path)
        if "format_version" not in meta or "params" not in meta:
            raise HashlearnFileError(f"{path} is not a hashlearn model file (no format version).")
        if meta["format_version"] != FORMAT_VERSION:
            raise version_refused(path, "model", meta["format_version"], FORMAT_VERSION)
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
            if scalars.pop(f"{key}__asobject", False):
                value = value.astype(object)
            setattr(model, key, value)
        for key, value in scalars.items():
            setattr(model, key, value)
        check_loaded(path, model)
        return model


def _refuse_plain_npy(path: str | os.PathLike) -> None:
    """A plain ``.npy`` array (codes or features) where a model file is expected: say so."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except OSError:
        return  # load_arrays words a missing or unreadable file
    if magic == b"\x93NUMPY":
        raise HashlearnFileError(
            f"{path} is a plain .npy array (codes or features?), not a model file; pass the "
            ".npz model written by `hashlearn fit` or .save()."
        )


class SupervisedMixin:
    """Mixin for methods whose ``fit`` needs labels: sets scikit-learn's tag
    ``target_tags.required`` and validates ``(X, y)`` together. Put it before
    :class:`BaseHasher` in the bases."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def _check_X_y(self, X: Any, y: Any, *, min_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """Validated features and the labels as a 0/1 float64 matrix (n_samples, n_classes)."""
        X = self._check_X(X, reset=True, min_samples=min_samples)
        return X, check_labels(y, len(X))
