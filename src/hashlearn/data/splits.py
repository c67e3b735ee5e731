"""Seeded, class-stratified retrieval splits.

One mechanism serves every dataset: :func:`draw_splits` takes how many items of each class go
to ``query``, ``val`` and ``train`` and draws them, in that order, from a
``numpy.random.default_rng(split_seed)``:

1. ``query`` is drawn from the whole pool;
2. ``val`` from what is left;
3. ``database`` is everything not in ``query`` or ``val``;
4. ``train`` is drawn from the database (as in the standard deep-hashing protocol, where the
   training images are also searchable), or is the whole database.

Query and validation items are therefore never in the database, and the same seed gives the
same indices bit for bit (each draw permutes the candidate pool once and takes, per class, the
first items of that permutation). Multi-label data is split uniformly at random with the same
steps. The fixed-count protocols are described by :class:`Protocol`; user data uses
:func:`allocate` to spread a total over classes in proportion to their sizes.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hashlearn._validation import HashlearnInputError


@dataclass(frozen=True)
class Protocol:
    """How a registered dataset is cut into splits.

    Either per-class counts (``query_per_class`` items of every class form the query set, and so
    on; the database is the rest), or, with ``fixed_sizes``, a split that the dataset itself
    defines (e.g. Fashion-MNIST's official train/test files).
    """

    name: str
    description: str
    query_per_class: int = 0
    val_per_class: int = 0
    train_per_class: int | None = None
    fixed_sizes: Mapping[str, int] | None = None

    def sizes(self, n_classes: int, n_items: int) -> dict[str, int]:
        """Split sizes for a pool of ``n_items`` items in ``n_classes`` balanced-enough classes."""
        if self.fixed_sizes is not None:
            return dict(self.fixed_sizes)
        held_out = (self.query_per_class + self.val_per_class) * n_classes
        database = n_items - held_out
        out = {
            "train": database if self.train_per_class is None else self.train_per_class * n_classes,
            "query": self.query_per_class * n_classes,
            "database": database,
        }
        if self.val_per_class:
            out["val"] = self.val_per_class * n_classes
        return out

    def counts(self, n_classes: int) -> dict[str, np.ndarray | None]:
        """Per-class counts for :func:`draw_splits`."""
        full = lambda k: np.full(n_classes, k, dtype=np.int64)  # noqa: E731
        return {
            "query": full(self.query_per_class),
            "val": full(self.val_per_class) if self.val_per_class else None,
            "train": None if self.train_per_class is None else full(self.train_per_class),
        }


def check_seed(split_seed: object) -> int:
    """Return ``split_seed`` as a non-negative int or raise a clear error."""
    if isinstance(split_seed, bool) or not isinstance(split_seed, numbers.Integral):
        raise HashlearnInputError(f"split_seed must be a non-negative integer, got {split_seed!r}.")
    if split_seed < 0:
        raise HashlearnInputError(f"split_seed must be >= 0, got {split_seed}.")
    return int(split_seed)


def resolve_size(size: object, n: int, name: str, *, allow_zero: bool) -> int:
    """Turn a fraction in (0, 1) of ``n`` (rounded up) or an item count into a count."""
    if isinstance(size, bool) or not isinstance(size, numbers.Real):
        raise HashlearnInputError(f"{name} must be a fraction in (0, 1) or a count, got {size!r}.")
    if isinstance(size, numbers.Integral):
        count = int(size)
    elif 0.0 < float(size) < 1.0:
        count = math.ceil(float(size) * n)
    else:
        raise HashlearnInputError(
            f"{name}={size!r}: a float must be a fraction strictly between 0 and 1; "
            "pass an int for an absolute number of items."
        )
    if count < 0 or (count == 0 and not allow_zero):
        raise HashlearnInputError(f"{name} must be at least 1 item, got {size!r}.")
    if count > n:
        raise HashlearnInputError(f"{name}={count} is more than the {n} items available.")
    return count


def allocate(total: int, sizes: np.ndarray, caps: np.ndarray | None = None) -> np.ndarray:
    """Spread ``total`` items over classes in proportion to ``sizes``, never above ``caps``.

    Largest-remainder rounding: each class first gets the floor of its exact share
    ``total * size / sum(sizes)``; leftover items go one by one to the classes with the largest
    shortfall (ties to the lower class id), skipping classes at their cap. Deterministic.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    caps = sizes.copy() if caps is None else np.minimum(np.asarray(caps, np.int64), sizes)
    if total > caps.sum():
        raise HashlearnInputError(f"cannot place {total} items: only {caps.sum()} are available.")
    ideal = total * sizes / max(int(sizes.sum()), 1)
    alloc = np.minimum(np.floor(ideal).astype(np.int64), caps)
    while (remaining := total - int(alloc.sum())) > 0:
        open_ = np.flatnonzero(alloc < caps)
        order = open_[np.argsort(-(ideal[open_] - alloc[open_]), kind="stable")]
        alloc[order[:remaining]] += 1
    return alloc


def _draw(
    y: np.ndarray, pool: np.ndarray, counts: np.ndarray | int, rng: np.random.Generator, what: str
) -> np.ndarray:
    """Draw ``counts[c]`` items of each class c (or ``counts`` items at random) from ``pool``."""
    perm = rng.permutation(pool)
    if np.ndim(counts) == 0:
        return np.sort(perm[: int(counts)])
    counts = np.asarray(counts, dtype=np.int64)
    labels = y[perm]
    order = np.argsort(labels, kind="stable")
    available = np.bincount(labels, minlength=len(counts))
    short = np.flatnonzero(counts > available[: len(counts)])
    if short.size:
        c = short[0]
        raise HashlearnInputError(
            f"class {c} has only {available[c]} items left for the {what} split but "
            f"{counts[c]} are needed; use a smaller {what} size or a different protocol."
        )
    starts = np.concatenate([[0], np.cumsum(available)[:-1]])
    picked = [perm[order[s : s + k]] for s, k in zip(starts[: len(counts)], counts) if k]
    return np.sort(np.concatenate(picked)) if picked else np.empty(0, dtype=np.int64)


def draw_splits(
    y: np.ndarray,
    rng: np.random.Generator,
    *,
    query: np.ndarray | int,
    val: np.ndarray | int | None = None,
    train: np.ndarray | int | None = None,
) -> dict[str, np.ndarray]:
    """Draw query, val, database and train indices (see the module docstring for the order).

    ``query``, ``val`` and ``train`` are per-class count arrays (single-label ``y``) or plain
    totals (drawn uniformly at random); ``val=None`` means no validation split and
    ``train=None`` means train on the whole database. Returns sorted int64 index arrays.
    """
    pool = np.arange(len(y), dtype=np.int64)
    out: dict[str, np.ndarray] = {"query": _draw(y, pool, query, rng, "query")}
    rest = np.setdiff1d(pool, out["query"], assume_unique=True)
    if val is not None:
        out["val"] = _draw(y, rest, val, rng, "val")
        rest = np.setdiff1d(rest, out["val"], assume_unique=True)
    out["database"] = rest
    out["train"] = rest if train is None else _draw(y, rest, train, rng, "train")
    return out
