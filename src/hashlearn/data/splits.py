"""Seeded, class-stratified retrieval splits.

One mechanism serves every dataset: :func:`draw_splits` takes how many items of each class go
to ``query``, ``val`` and ``train`` and draws them, in that order, from a
``numpy.random.default_rng(split_seed)``:

1. ``query`` is drawn from the whole pool;
2. ``val`` from what is left;
3. ``database`` is everything not in ``query`` or ``val``;
4. ``train`` is drawn from the database (as in the standard deep-hashing protocol, where the
   training images are also searchable), or is the whole database; protocols with
   ``train_in_database=False`` (HSWD's CIFAR-10: 5,000 train, 54,000 database) draw it from
   what is left after ``val`` instead, before the database is formed.

Query and validation items are therefore never in the database, and the same seed gives the
same indices bit for bit (each draw permutes the candidate pool once and takes, per class, the
first items of that permutation). Multi-label data is split uniformly at random with the same
steps. The fixed-count protocols are described by :class:`Protocol`; user data uses
:func:`allocate` to spread a total over classes in proportion to their sizes.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn._validation import HashlearnInputError

log = logging.getLogger("hashlearn.data")

#: A split size: a fraction in (0, 1), an item count, or ``None`` (meaning depends on the split).
SizeArg = float | int | None


@dataclass(frozen=True)
class Protocol:
    """How a registered dataset is cut into splits.

    One of three kinds:

    * per-class counts (``query_per_class`` items of every class form the query set, and so
      on; the database is the rest), drawn by :func:`draw_splits`;
    * ``fixed_sizes``: a split that the dataset itself defines (Fashion-MNIST's official
      train/test files, the list files of NUS-WIDE), read from ``Source.predefined``;
    * ``user_sizes``: sizes resolved on the data, as for the user's own arrays
      (:func:`split_indices`; keys ``query_size``, ``val_size``,
      ``train_size``), for datasets whose classes are only known once read (image folders).

    ``map_topk`` is the protocol's mAP cut-off (``None``: mAP over the whole database); it is
    recorded in the manifest and used by ``hashlearn evaluate`` when ``--topk`` is not given.
    """

    name: str
    description: str
    query_per_class: int = 0
    val_per_class: int = 0
    train_per_class: int | None = None
    fixed_sizes: Mapping[str, int] | None = None
    map_topk: int | None = None
    train_in_database: bool = True
    user_sizes: Mapping[str, float | int | None] | None = None

    def sizes(self, n_classes: int, n_items: int) -> dict[str, int]:
        """Split sizes for a pool of ``n_items`` items in ``n_classes`` balanced-enough classes
        (empty for ``user_sizes`` protocols: those depend on the data)."""
        if self.fixed_sizes is not None:
            return dict(self.fixed_sizes)
        if self.user_sizes is not None:
            return {}
        held_out = (self.query_per_class + self.val_per_class) * n_classes
        if not self.train_in_database and self.train_per_class is not None:
            held_out += self.train_per_class * n_classes
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

    def draw(
        self,
        y: np.ndarray,
        n_classes: int,
        split_seed: int,
        predefined: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    ) -> dict[str, np.ndarray]:
        """Split name → indices for labels ``y`` under this protocol and seed."""
        if self.fixed_sizes is not None:
            if not predefined or self.name not in predefined:
                raise HashlearnInputError(
                    f"protocol {self.name!r} uses the split defined by the dataset files, "
                    "but the reader did not provide it."
                )
            return dict(predefined[self.name])
        if self.user_sizes is not None:
            return split_indices(y, n_classes, split_seed, **self.user_sizes)[0]
        rng = np.random.default_rng(split_seed)
        return draw_splits(
            y, rng, **self.counts(n_classes), train_in_database=self.train_in_database
        )

    def record(self) -> dict[str, object]:
        """The protocol's parameters for the manifest."""
        out: dict[str, object] = {"map_topk": self.map_topk}
        if self.fixed_sizes is None and self.user_sizes is None:
            out.update(
                query_per_class=self.query_per_class,
                val_per_class=self.val_per_class,
                train_per_class=self.train_per_class,
                train_in_database=self.train_in_database,
            )
        elif self.user_sizes is not None:
            out.update(dict(self.user_sizes))
        return out


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
    train_in_database: bool = True,
) -> dict[str, np.ndarray]:
    """Draw query, val, database and train indices (see the module docstring for the order).

    ``query``, ``val`` and ``train`` are per-class count arrays (single-label ``y``) or plain
    totals (drawn uniformly at random); ``val=None`` means no validation split and
    ``train=None`` means train on the whole database. With ``train_in_database=False`` the
    training items are held out of the database. Returns sorted int64 index arrays.
    """
    pool = np.arange(len(y), dtype=np.int64)
    out: dict[str, np.ndarray] = {"query": _draw(y, pool, query, rng, "query")}
    rest = np.setdiff1d(pool, out["query"], assume_unique=True)
    if val is not None:
        out["val"] = _draw(y, rest, val, rng, "val")
        rest = np.setdiff1d(rest, out["val"], assume_unique=True)
    if train is not None and not train_in_database:
        out["train"] = _draw(y, rest, train, rng, "train")
        out["database"] = np.setdiff1d(rest, out["train"], assume_unique=True)
        return out
    out["database"] = rest
    out["train"] = rest if train is None else _draw(y, rest, train, rng, "train")
    return out


def _held_out_counts(total: int, sizes: np.ndarray, what: str) -> np.ndarray:
    """Per-class counts for a held-out split, keeping one item of each class for the database."""
    keep_one = np.maximum(sizes - 1, 0)
    if total <= keep_one.sum():
        return allocate(total, sizes, keep_one)
    log.warning(
        "%s split of %d items is larger than what the classes can give while keeping one item "
        "of each class in the database; some %s items will have no relevant database item.",
        what,
        total,
        what,
    )
    return allocate(total, sizes)


def split_indices(
    y: np.ndarray,
    n_classes: int,
    split_seed: int,
    *,
    query_size: SizeArg = 0.1,
    train_size: SizeArg = None,
    val_size: SizeArg = 0,
) -> tuple[dict[str, np.ndarray], str, str]:
    """Split labels as the user's own data is split (:func:`hashlearn.data.from_arrays`).

    ``y``: class ids 0..n_classes-1 or a multi-hot matrix; sizes as in ``from_arrays``: a
    query or validation item is only taken from a class while one item of that class stays in
    the database, and each class's share is rounded by largest remainders.

    Returns ``(indices, protocol_name, description)``: split name → sorted indices, the
    protocol name (``"stratified"``, or ``"random"`` for multi-hot labels) and its text.
    """
    n = len(y)
    n_query = resolve_size(query_size, n, "query_size", allow_zero=False)
    n_val = resolve_size(val_size, n, "val_size", allow_zero=True)
    n_db = n - n_query - n_val
    if n_db < 1:
        raise HashlearnInputError(
            f"query ({n_query}) and val ({n_val}) items leave no database items out of {n}; "
            "use smaller query_size/val_size."
        )
    n_train = (
        None
        if train_size is None
        else resolve_size(train_size, n_db, "train_size", allow_zero=False)
    )
    multilabel = y.ndim == 2
    if multilabel:
        counts: dict[str, Any] = {"query": n_query, "val": n_val or None, "train": n_train}
        rule = "uniformly random (multi-label)"
    else:
        sizes = np.bincount(y, minlength=n_classes)
        query = _held_out_counts(n_query, sizes, "query")
        val = _held_out_counts(n_val, sizes - query, "val") if n_val else None
        db = sizes - query - (0 if val is None else val)
        train = None if n_train is None else allocate(n_train, db)
        counts = {"query": query, "val": val, "train": train}
        rule = "stratified by class (largest-remainder shares)"
    indices = draw_splits(y, np.random.default_rng(split_seed), **counts)
    description = (
        f"user data, {rule}: query = {n_query}, val = {n_val}, database = the other {n_db}, "
        + ("train = the database" if n_train is None else f"train = {n_train} from the database")
        + f" (query_size={query_size!r}, val_size={val_size!r}, train_size={train_size!r})"
    )
    return indices, "random" if multilabel else "stratified", description


#: Per-class split sizes of the seed papers' CIFAR-10 protocols, shared by every dataset that
#: carries them over: H²Q (Lucas-Schwengber/h2q ``src/data/process/CIFAR_10.py``; mAP@5000) and
#: HSWD (= DeepHash-pytorch's ``cifar10``; mAP@all). Training images are held out of the database.
PAPER_PROTOCOLS = {
    "h2q": {"query_per_class": 100, "val_per_class": 100, "train_per_class": 500,
            "train_in_database": False, "map_topk": 5000},
    "hswd": {"query_per_class": 100, "train_per_class": 500, "train_in_database": False,
             "map_topk": None},
}  # fmt: skip


def paper_protocol(name: str, description: str) -> Protocol:
    """The ``h2q`` or ``hswd`` protocol (:data:`PAPER_PROTOCOLS`) with a dataset's description."""
    return Protocol(name=name, description=description, **PAPER_PROTOCOLS[name])
