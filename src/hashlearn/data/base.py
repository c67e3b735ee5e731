"""The containers every loader returns: :class:`Split` and :class:`Dataset`.

A dataset is one pool of items (features, labels, optionally images) cut into the splits of a
retrieval protocol: ``train`` (fits the hashing method), ``query`` (the searches), ``database``
(what is searched) and, where the protocol has one, ``val`` (model selection — never the query
set, whose numbers would then be optimistic). Each split keeps ``indices`` into the pooled
source, and the dataset keeps a JSON-able ``manifest`` that records how the cut was made, so a
result can always be traced back to its exact items.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashlearn._io import write_json_atomic
from hashlearn._validation import HashlearnInputError
from hashlearn.data.registry import Source

SPLIT_NAMES = ("train", "val", "query", "database")


FeatureSource = np.ndarray | Callable[[], np.ndarray]


class Split:
    """One split of a dataset.

    Attributes:
        X: float32 features, shape ``(n, d)`` (for image datasets: pixels scaled to [0, 1]).
            A split may be built with a function instead, computed on first access and kept
            (so an image set used only through its images never holds its features); for
            image sets without feature vectors that function raises a clear error.
        y: labels — 1-D int64 class ids, or 2-D multi-hot ``(n, n_classes)`` uint8; ``None``
            for unlabelled vectors (scored by neighbour metrics only).
        images: uint8 images — an array ``(n, H, W)`` or ``(n, H, W, 3)``, or a lazy
            :class:`hashlearn.data.images.ImageFiles` sequence (``len()``, ``images[i]`` decodes
            one image to a uint8 ``(H, W, 3)`` array) — or ``None`` for feature-only data.
        indices: int64 positions of these items in the pooled source (see the manifest).
    """

    def __init__(
        self,
        X: FeatureSource,
        y: np.ndarray | None,
        images: Any,
        indices: np.ndarray,
    ) -> None:
        self._X = X
        self.y = y
        self.images = images
        self.indices = indices
        n = len(indices)
        for name, value in (("X", None if callable(X) else X), ("y", y), ("images", images)):
            if value is not None and len(value) != n:
                raise HashlearnInputError(
                    f"split {name} has {len(value)} rows but there are {n} indices."
                )

    @property
    def X(self) -> np.ndarray:
        if callable(self._X):
            X = self._X()
            if len(X) != len(self.indices):
                raise HashlearnInputError(
                    f"split X has {len(X)} rows but there are {len(self.indices)} indices."
                )
            self._X = X
        return self._X

    @X.setter
    def X(self, value: FeatureSource) -> None:
        self._X = value

    @property
    def has_features(self) -> bool:
        """Whether ``X`` is already computed (accessing ``X`` may compute it, or raise)."""
        return not callable(self._X)

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        X = f"X={self._X.shape}" if self.has_features else "X=<on demand>"
        img = ""
        if self.images is not None:
            shape = getattr(self.images, "shape", None)
            img = f", images={shape}" if shape is not None else f", images={self.images!r}"
        return f"Split(n={len(self)}, {X}, y={self.y.shape}{img})"

    @property
    def is_multilabel(self) -> bool:
        return self.y is not None and self.y.ndim == 2


def take_split(
    X: np.ndarray | Callable[[Any], np.ndarray],
    y: np.ndarray,
    images: Any,
    indices: np.ndarray,
) -> Split:
    """Gather the rows ``indices`` of a pooled source into a :class:`Split` (copies).

    ``X`` may be a function computing features from the gathered images; it runs when the
    split's ``X`` is first read, so image datasets never hold float features for the whole
    pool (Fashion-MNIST: 220 MB saved) and deep training on images never computes them.
    Lazy image sequences (anything with a ``subset`` method) are subset, not decoded.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if images is None:
        imgs = None
    elif hasattr(images, "subset"):
        imgs = images.subset(indices)
    else:
        imgs = np.ascontiguousarray(images[indices])
    features: FeatureSource = (lambda: X(imgs)) if callable(X) else np.ascontiguousarray(X[indices])
    return Split(
        X=features,
        y=None if y is None else np.ascontiguousarray(y[indices]),
        images=imgs,
        indices=indices,
    )


@dataclass(eq=False)
class Dataset:
    """A dataset cut into the splits of one retrieval protocol.

    Attributes:
        name: registry name (or the file stem / ``name`` argument for user data).
        protocol: name of the split protocol (e.g. ``"hashing"`` or ``"official"``).
        split_seed: seed of the :class:`numpy.random.Generator` that drew the splits.
        train, query, database: the splits; ``val`` is ``None`` when the protocol has none.
        n_classes: number of classes (columns of multi-hot labels).
        class_names: human-readable name of each class id.
        manifest: JSON-able record of the protocol, seed, sizes, per-class counts, sources and
            their checksums, and the hashlearn version (see :meth:`save_manifest`).
    """

    name: str
    protocol: str
    split_seed: int
    train: Split
    query: Split
    database: Split
    val: Split | None
    n_classes: int
    class_names: list[str]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.database.X.shape[1])

    @property
    def is_multilabel(self) -> bool:
        return self.database.is_multilabel

    def splits(self) -> dict[str, Split]:
        """The splits that exist, by name, in the order train, val, query, database."""
        out = {name: getattr(self, name) for name in SPLIT_NAMES}
        return {name: split for name, split in out.items() if split is not None}

    @property
    def map_topk(self) -> int | None:
        """The protocol's mAP cut-off (``None``: mAP@all), from the manifest."""
        return self.manifest.get("protocol_parameters", {}).get("map_topk")

    def resolve_topk(self, topk: int | str | None = "protocol") -> int | None:
        """The mAP cut-off to use: ``"protocol"`` → the protocol's own (:attr:`map_topk`,
        capped at the database size), ``"all"`` or ``None`` → ``None`` (mAP@all), an int → it."""
        if topk == "protocol":
            cut = self.map_topk
            return None if cut is None else min(int(cut), len(self.database))
        if topk is None or topk == "all":
            return None
        if isinstance(topk, str):
            raise HashlearnInputError(
                f"topk must be a positive integer, 'all' or 'protocol', got {topk!r}."
            )
        n_db = len(self.database)
        if isinstance(topk, (int, np.integer)) and not isinstance(topk, bool) and topk > n_db:
            # Refused here, before any fit, rather than by the metrics after the first one.
            raise HashlearnInputError(
                f"topk={topk} is larger than the database ({n_db} items); use topk <= {n_db} "
                "or topk=None for all."
            )
        return topk

    def split_fingerprint(self, split: str) -> str:
        """SHA-256 identifying one split's items: dataset, sources (with their checksums),
        protocol and the split's indices. Keys caches of per-split results (backbone
        features); two loads of the same files with the same protocol and seed agree."""
        if split not in self.splits():
            raise HashlearnInputError(
                f"dataset {self.name!r} has no {split!r} split; it has: {', '.join(self.splits())}."
            )
        record = {
            "dataset": self.name,
            "sources": self.manifest.get("sources", []),
            "protocol": self.protocol,
            "split": split,
            "indices_sha256": bytes_sha256(getattr(self, split).indices.astype("<i8")),
        }
        text = json.dumps(record, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits().items())
        db = self.database
        d = db.X.shape[1] if db.has_features else "on demand"
        return (
            f"Dataset({self.name!r}, protocol={self.protocol!r}, split_seed={self.split_seed}, "
            f"n_classes={self.n_classes}, d={d}, {sizes})"
        )

    def save_manifest(self, path: str | os.PathLike, *, include_indices: bool = False) -> None:
        """Write the manifest as JSON, atomically.

        With ``include_indices=True`` the exact item positions of every split are stored too,
        so the split can be rebuilt without hashlearn; otherwise their SHA-256 (already in the
        manifest) is enough to check that a rerun drew the same items.
        """
        manifest = dict(self.manifest)
        if include_indices:
            manifest["indices"] = {k: v.indices.tolist() for k, v in self.splits().items()}
        write_json_atomic(path, manifest)


def per_class_counts(y: np.ndarray, n_classes: int) -> list[int]:
    """Items per class (label-column sums for multi-hot labels); none without labels."""
    if y is None:
        return []
    if y.ndim == 2:
        return [int(v) for v in y.sum(axis=0, dtype=np.int64)]
    return [int(v) for v in np.bincount(y, minlength=n_classes)]


def bytes_sha256(arr: np.ndarray) -> str:
    """SHA-256 of an array's raw bytes in C order, not of its dtype or shape (the manifests
    record those separately; :func:`hashlearn._checksums.array_sha256` hashes all three)."""
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def build_manifest(
    *,
    name: str,
    protocol: str,
    protocol_description: str,
    split_seed: int,
    n_classes: int,
    class_names: list[str],
    splits: dict[str, Split],
    sources: list[dict[str, Any]],
    n_pool: int,
    randomised: bool = True,
) -> dict[str, Any]:
    """The JSON-able record of how a dataset was built (see :class:`Dataset`)."""
    from hashlearn import __version__

    return {
        "dataset": name,
        "protocol": protocol,
        "protocol_description": protocol_description,
        "split_seed": int(split_seed),
        "rng": "numpy.random.default_rng(split_seed)" if randomised else "none (fixed split)",
        "hashlearn_version": __version__,
        "numpy_version": np.__version__,
        "n_pool": int(n_pool),
        "n_classes": int(n_classes),
        "class_names": list(class_names),
        "splits": {
            key: {
                "size": len(split),
                "per_class": per_class_counts(split.y, n_classes),
                "indices_sha256": bytes_sha256(split.indices.astype("<i8")),
            }
            for key, split in splits.items()
        },
        "sources": sources,
    }


def make_dataset(
    *,
    name: str,
    protocol: str,
    protocol_description: str,
    split_seed: int,
    X: np.ndarray | Callable[[Any], np.ndarray],
    y: np.ndarray | None,
    images: Any,
    indices: dict[str, np.ndarray],
    n_classes: int,
    class_names: list[str],
    sources: list[dict[str, Any]],
    randomised: bool = True,
) -> Dataset:
    """Cut a pooled source into a :class:`Dataset` along ``indices`` (split name → rows).

    Splits with identical indices (e.g. ``train`` = ``database``) share one :class:`Split`
    object instead of holding two copies of the same rows.
    """
    splits: dict[str, Split] = {}
    for key in SPLIT_NAMES:
        if key not in indices:
            continue
        same = next((s for s in splits.values() if np.array_equal(s.indices, indices[key])), None)
        splits[key] = same if same is not None else take_split(X, y, images, indices[key])
    manifest = build_manifest(
        name=name,
        protocol=protocol,
        protocol_description=protocol_description,
        split_seed=split_seed,
        n_classes=n_classes,
        class_names=class_names,
        splits=splits,
        sources=sources,
        n_pool=len(y if y is not None else X),
        randomised=randomised,
    )
    return Dataset(
        name=name,
        protocol=protocol,
        split_seed=split_seed,
        train=splits["train"],
        query=splits["query"],
        database=splits["database"],
        val=splits.get("val"),
        n_classes=n_classes,
        class_names=list(class_names),
        manifest=manifest,
    )


def dataset_from_source(
    source: Source,
    *,
    name: str,
    protocol: str,
    protocol_description: str,
    split_seed: int,
    indices: dict[str, np.ndarray],
    n_classes: int,
    randomised: bool = True,
) -> Dataset:
    """Cut a registered reader's pooled :class:`~hashlearn.data.registry.Source` along
    ``indices`` (see :func:`make_dataset`)."""
    return make_dataset(
        name=name,
        protocol=protocol,
        protocol_description=protocol_description,
        split_seed=split_seed,
        X=source.X,
        y=source.y,
        images=source.images,
        indices=indices,
        n_classes=n_classes,
        class_names=source.class_names,
        sources=source.files,
        randomised=randomised,
    )
