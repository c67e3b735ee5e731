"""The user's own arrays: :func:`from_arrays` (split them) and :func:`from_splits` (already split).

Arrays are validated at this boundary (2-D finite features, one label per row, enough items
for every split) and cut by the same seeded mechanism as the registered datasets
(:func:`hashlearn.data.splits.draw_splits`): single-label data is stratified by class, with
each class's share rounded by largest remainders; multi-label (2-D multi-hot) data is split
uniformly at random. A query or validation item is only taken from a class while at least one
item of that class stays in the database, so every query has a relevant database item when the
data allow it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._labels import encode_labels
from hashlearn._validation import HashlearnInputError, check_features
from hashlearn.data.base import Dataset, bytes_sha256, make_dataset
from hashlearn.data.splits import SizeArg, check_seed, split_indices


def from_arrays(
    X: Any,
    y: Any,
    *,
    query_size: SizeArg = 0.1,
    train_size: SizeArg = None,
    val_size: SizeArg = 0,
    split_seed: int = 0,
    name: str = "custom",
    images: Any = None,
    require_labels: bool = True,
    _sources: list[dict[str, Any]] | None = None,
) -> Dataset:
    """Split your own features and labels into a retrieval :class:`Dataset`.

    Args:
        X: features ``(n, d)``, finite numbers (stored as float32).
        y: ``n`` class labels (ints or strings) or a multi-hot ``(n, C)`` 0/1 matrix, or
            ``None`` with ``require_labels=False`` for unlabelled vectors (a seeded random
            split, scored by neighbour metrics only).
        query_size: query items — a fraction of ``n`` (rounded up) or a count.
        train_size: training items drawn from the database — a fraction of the database,
            a count, or ``None`` to train on the whole database.
        val_size: validation items (never in the database), fraction of ``n`` or count; 0 for none.
        split_seed: seed of the split; the same seed gives the same items bit for bit.
        name: dataset name recorded in the manifest.
        images: optional ``(n, H, W)`` images carried along with the features.
    """
    split_seed = check_seed(split_seed)
    X = check_features(X, "X", min_samples=2)
    n = len(X)
    if y is None and not require_labels:
        y, n_classes, class_names = None, 0, []
    else:
        y, n_classes, class_names = encode_labels(y, n)
    with np.errstate(over="ignore"):
        X32 = X.astype(np.float32)
    if not np.isfinite(X32).all():
        raise HashlearnInputError(
            "X has values too large for float32 (above 3.4e38); rescale the features."
        )
    if images is not None:
        images = np.asarray(images)
        if len(images) != n:
            raise HashlearnInputError(f"images has {len(images)} rows but X has {n}.")
    indices, protocol, description = split_indices(
        np.zeros(n, dtype=np.int64) if y is None else y,
        max(n_classes, 1),
        split_seed,
        query_size=query_size,
        train_size=train_size,
        val_size=val_size,
    )
    if y is None:
        protocol, description = "random", "unlabelled: " + description
    sources = list(_sources or [])
    sources.append(
        {
            "origin": "arrays",
            "X_sha256": bytes_sha256(X32.astype("<f4")),
            "y_sha256": None if y is None else bytes_sha256(y.astype("<i8") if y.ndim == 1 else y),
        }
    )
    return make_dataset(
        name=name,
        protocol=protocol,
        protocol_description=description,
        split_seed=split_seed,
        X=X32,
        y=y,
        images=images,
        indices=indices,
        n_classes=n_classes,
        class_names=class_names,
        sources=sources,
    )


def from_splits(
    query: tuple[Any, Any],
    database: tuple[Any, Any],
    train: tuple[Any, Any] | None = None,
    val: tuple[Any, Any] | None = None,
    *,
    name: str = "custom",
    _sources: list[dict[str, Any]] | None = None,
) -> Dataset:
    """Build a :class:`Dataset` from splits you already have, each an ``(X, y)`` pair.

    Use it when a benchmark's split is fixed elsewhere (e.g. features extracted for the
    standard CIFAR-10 protocol). ``train=None`` trains on the database. Labels of all splits
    are encoded together, so a class has the same id everywhere. The pool recorded in
    ``indices`` is the concatenation train, val, query, database of the given arrays.
    """
    given = {"train": train, "val": val, "query": query, "database": database}
    given = {key: pair for key, pair in given.items() if pair is not None}
    arrays, labels, n_features = {}, {}, None
    for key, pair in given.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise HashlearnInputError(f"{key} must be an (X, y) pair, got {type(pair).__name__}.")
        X = check_features(pair[0], f"{key} X")
        if n_features is not None and X.shape[1] != n_features[1]:
            raise HashlearnInputError(
                f"{key} X has {X.shape[1]} features but {n_features[0]} X has "
                f"{n_features[1]}; every split needs the same feature columns."
            )
        n_features = n_features or (key, X.shape[1])
        with np.errstate(over="ignore"):
            arrays[key] = X.astype(np.float32)
        if not np.isfinite(arrays[key]).all():
            raise HashlearnInputError(f"{key} X has values too large for float32; rescale them.")
        y = np.asarray(pair[1]) if pair[1] is not None else None
        if y is None or len(y) != len(X):
            got = "no labels" if y is None else f"{len(y)} labels"
            raise HashlearnInputError(f"{key} has {got} but {len(X)} rows; pass one label per row.")
        labels[key] = y
    try:
        pooled_y = np.concatenate([labels[key] for key in given])
    except ValueError:
        raise HashlearnInputError(
            "all splits need labels of the same kind (1-D class labels, or multi-hot "
            "matrices with the same number of columns)."
        ) from None
    y, n_classes, class_names = encode_labels(pooled_y, len(pooled_y))
    offsets = np.cumsum([0] + [len(arrays[key]) for key in given])
    indices = {
        key: np.arange(offsets[i], offsets[i + 1], dtype=np.int64) for i, key in enumerate(given)
    }
    if train is None:
        indices["train"] = indices["database"]
    X_pool = np.concatenate([arrays[key] for key in given])
    sources = list(_sources or [])
    sources.append({"origin": "arrays", "X_sha256": bytes_sha256(X_pool.astype("<f4"))})
    return make_dataset(
        name=name,
        protocol="predefined",
        protocol_description="splits given by the user"
        + ("" if train is not None else "; train = the database"),
        split_seed=0,
        X=X_pool,
        y=y,
        images=None,
        indices=indices,
        n_classes=n_classes,
        class_names=class_names,
        sources=sources,
        randomised=False,
    )
