"""What the trainer feeds the network: labels as multi-hot, the input spec, the validation split.

The input spec (kind, shape, normalisation) is taken from the training inputs and stored in the
run's ``config.json``, so that encoding later prepares inputs exactly as training did.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hashlearn._labels import labels_to_multihot
from hashlearn._scaling import unit_scaled
from hashlearn._validation import HashlearnInputError
from hashlearn.data.images import ImageTransform
from hashlearn.deep.config import input_kind

__all__ = ["feature_tensor", "input_spec", "lazy_image_spec", "split_validation", "to_multihot"]


def to_multihot(y: np.ndarray, n_classes: int, name: str = "labels") -> torch.Tensor:
    """1-D class ids or 2-D multi-hot labels → float multi-hot ``(n, n_classes)``."""
    return torch.from_numpy(labels_to_multihot(y, n_classes, name=name, dtype=np.float32))


def input_spec(backbone: str, inputs: np.ndarray) -> dict:
    """How to turn raw inputs into network inputs: kind, shape and normalisation, from the
    training inputs (stored in ``config.json`` so that encoding later does the same)."""
    kind = input_kind(backbone)
    if kind == "features":
        if inputs.ndim != 2:
            raise HashlearnInputError(
                f"the 'mlp' backbone takes feature rows (n, d), got shape {inputs.shape}."
            )
        # Power-of-two scaled first, so that features near 1e±300 neither overflow nor
        # underflow the squares (exact: the same mean and std bits on ordinary data).
        scaled, e = unit_scaled(inputs.astype(np.float64))
        return {
            "kind": kind,
            "in_features": int(inputs.shape[1]),
            "mean": math.ldexp(float(scaled.mean()), int(e)),
            "std": math.ldexp(float(scaled.std()), int(e)) or 1.0,
        }
    if inputs.ndim not in (3, 4):
        raise HashlearnInputError(
            f"backbone {backbone!r} takes images (n, H, W[, C]), got shape {inputs.shape}; "
            "use `backbone='mlp'` for feature vectors."
        )
    spec = {
        "kind": kind,
        "image_shape": list(inputs.shape[1:]),
        "in_channels": 1 if inputs.ndim == 3 else int(inputs.shape[3]),
        "mean": 0.0,
        "std": 1.0,
    }
    if backbone == "cnn":  # pretrained networks apply ImageNet normalisation themselves
        pixels = _scaled_sample(inputs)
        spec["mean"], spec["std"] = float(pixels.mean()), float(pixels.std() or 1.0)
    return spec


def feature_tensor(inputs: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """Feature rows standardised with the scalar ``mean`` and ``std``, as float32.

    Everything is first divided by a power of two near ``max(|mean|, std)`` (exact, so ordinary
    inputs give the same bits as ``(float32(x) - mean) / std``): features of any magnitude that
    the training data had are cast to float32 without overflow. Rows that still do not fit
    float32 once standardised (NaN, or far larger than the training data) raise a clear error.
    """
    e = math.frexp(max(abs(mean), std))[1]
    with np.errstate(over="ignore", under="ignore"):
        scaled = np.ascontiguousarray(np.ldexp(inputs, -e), dtype=np.float32)
    batch = (torch.from_numpy(scaled) - math.ldexp(mean, -e)) / math.ldexp(std, -e)
    if not bool(torch.isfinite(batch).all()):
        raise _not_finite(np.asarray(inputs, dtype=np.float64), mean, std)
    return batch


def _not_finite(X: np.ndarray, mean: float, std: float) -> HashlearnInputError:
    bad = ~np.isfinite(X)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        return HashlearnInputError(
            f"X contains NaN or infinite values (first at row {row}, column {column}); "
            "impute or drop those rows before hashing."
        )
    return HashlearnInputError(
        f"X's entries reach {np.abs(X).max():.3g}, which once standardised with the training "
        f"data's mean {mean:.3g} and std {std:.3g} exceeds float32's range (3.4e38), in which "
        "the network computes; pass features on the scale of the training data."
    )


def lazy_image_spec(
    transform: ImageTransform,
    train_transform: ImageTransform | None = None,
    *,
    name: str | None = None,
) -> dict:
    """The input spec of a run whose images are prepared by a transform: RGB images prepared
    by ``transform`` for evaluation and ``train_transform`` (default the same) for training
    (pretrained backbones normalise inside the network, so ``mean``/``std`` are 0/1)."""
    spec = {
        "kind": "images",
        "image_shape": None,
        "in_channels": 3,
        "mean": 0.0,
        "std": 1.0,
        "transform": transform.describe(),
    }
    if train_transform is not None and train_transform.describe() != transform.describe():
        spec["train_transform"] = train_transform.describe()
    if name is not None:
        spec["transform_name"] = name
    return spec


def _scaled_sample(images: np.ndarray) -> np.ndarray:
    sample = images[: min(len(images), 5000)].astype(np.float64)
    return sample / 255.0 if images.dtype == np.uint8 else sample


def split_validation(
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    val_fraction: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict | None]:
    """``(X, y, X_val, y_val, holdout)``: the given validation split, or, when ``X_val`` is
    None, a seeded hold-out of ``val_fraction`` of the training items, described by
    ``holdout`` (seed, fraction, size and the held-out indices; None for a given split)."""
    if X_val is not None:
        if y_val is None or len(X_val) != len(y_val):
            raise HashlearnInputError("val inputs and val labels must have the same length.")
        if len(X_val) == 0:
            raise HashlearnInputError("the validation split is empty.")
        lazy = hasattr(X_val, "subset")  # lazy image files stay lazy
        return X, y, (X_val if lazy else np.asarray(X_val)), y_val, None
    n_val = max(1, int(round(len(X) * val_fraction)))
    if len(X) - n_val < 2:
        raise HashlearnInputError(f"need at least {n_val + 2} training items, got {len(X)}.")
    order = np.random.default_rng(seed).permutation(len(X))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    holdout = {
        "seed": seed,
        "fraction": val_fraction,
        "n_val": int(n_val),
        "indices": val_idx.tolist(),
    }
    return X[train_idx], y[train_idx], X[val_idx], y[val_idx], holdout
