"""The dataset a cell runs on: the protocol's splits, then (in this order, all seeded) a class
subset, per-split caps, frozen-backbone features and flipped training labels.

Frozen features are computed once per item over the union of the splits (training items that
are also database items run through the backbone once) and cached on disk by
:func:`hashlearn.deep.extract_features`, keyed by the backbone's weights and the images.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._validation import HashlearnInputError
from hashlearn.data import Dataset, Split, load_dataset
from hashlearn.data.base import SPLIT_NAMES

log = logging.getLogger("hashlearn")


class DatasetCache:
    """Loads each distinct dataset spec once per process and derives the cells' datasets."""

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        *,
        data_dir: str | os.PathLike | None = None,
        download: bool = True,
        progress: bool = True,
    ):
        self.cache_dir = Path(cache_dir)
        self.data_dir = data_dir
        self.download = download
        self.progress = progress
        self._base: dict[str, Dataset] = {}

    def base(self, spec: dict) -> Dataset:
        """The protocol's splits with the class subset, caps and features applied."""
        fields = ("name", "protocol", "split_seed", "classes", "max_items", "features")
        fields += ("image_size",)
        core = {k: spec.get(k) for k in fields}
        key = repr(sorted(core.items()))
        if key not in self._base:
            data_dir = self.data_dir if self.data_dir is not None else spec.get("data_dir")
            dataset = load_dataset(
                spec["name"],
                split_seed=spec.get("split_seed", 0),
                protocol=spec.get("protocol"),
                data_dir=data_dir,
                download=self.download,
                progress=self.progress,
            )
            if spec.get("classes"):
                dataset = keep_classes(dataset, spec["classes"])
            if spec.get("max_items"):
                dataset = cap_splits(dataset, spec["max_items"], spec.get("split_seed", 0))
            if spec.get("features"):
                dataset = with_features(
                    dataset,
                    spec["features"],
                    self.cache_dir,
                    self.progress,
                    image_size=spec.get("image_size", 224),
                )
            self._base[key] = dataset
        return self._base[key]

    def for_cell(self, spec: dict, seed: int, label_noise: float) -> Dataset:
        dataset = self.base(spec)
        if label_noise > 0:
            dataset = flip_labels(dataset, label_noise, seed)
        return dataset


def _splits(dataset: Dataset) -> dict[str, Split]:
    return {name: getattr(dataset, name) for name in SPLIT_NAMES}


def _subset(split: Split, rows: np.ndarray, X: Any = None) -> Split:
    images = split.images
    if images is not None:
        images = images.subset(rows) if hasattr(images, "subset") else images[rows]
    return Split(
        X=split.X[rows] if X is None else X,
        y=split.y[rows],
        images=images,
        indices=split.indices[rows],
    )


def _rebuild(dataset: Dataset, splits: dict[str, Split | None], note: dict) -> Dataset:
    manifest = {**dataset.manifest, **note}
    return dataclasses.replace(dataset, **splits, manifest=manifest)


def keep_classes(dataset: Dataset, classes: list[int]) -> Dataset:
    """Only the items of ``classes`` (multi-label: items carrying any of them), every split."""
    bad = [c for c in classes if not 0 <= c < dataset.n_classes]
    if bad:
        raise HashlearnInputError(
            f"dataset.classes holds {bad}, but {dataset.name!r} has classes "
            f"0..{dataset.n_classes - 1}."
        )
    wanted = np.asarray(classes)
    out: dict[str, Split | None] = {}
    for name, split in _splits(dataset).items():
        if split is None:
            out[name] = None
            continue
        y = split.y
        mask = np.isin(y, wanted) if y.ndim == 1 else y[:, wanted].any(axis=1)
        out[name] = _subset(split, np.flatnonzero(mask))
    return _rebuild(dataset, out, {"classes": list(classes)})


def cap_splits(dataset: Dataset, caps: dict[str, int], split_seed: int) -> Dataset:
    """At most ``caps[split]`` items of each named split: a seeded random subset, in order."""
    out: dict[str, Split | None] = {}
    for offset, (name, split) in enumerate(_splits(dataset).items()):
        if split is None and name in caps:
            raise HashlearnInputError(
                f"dataset.max_items.{name}: {dataset.name!r} protocol "
                f"{dataset.protocol!r} has no {name} split."
            )
        if split is None or name not in caps or caps[name] >= len(split):
            out[name] = split
            continue
        rng = np.random.default_rng([split_seed, 7919, offset])
        rows = np.sort(rng.permutation(len(split))[: caps[name]])
        out[name] = _subset(split, rows)
    return _rebuild(dataset, out, {"max_items": dict(caps)})


def with_features(
    dataset: Dataset,
    backbone_name: str,
    cache_dir: Path,
    progress: bool,
    *,
    image_size: int = 224,
) -> Dataset:
    """Every split's ``X`` replaced by frozen ImageNet-backbone features (cached on disk).

    Images are resized to ``image_size`` (224, the networks' ImageNet resolution, by default;
    smaller sizes trade fidelity for speed on CPUs)."""
    import torch

    from hashlearn.deep import build_backbone, extract_features

    splits = {n: s for n, s in _splits(dataset).items() if s is not None}
    if any(s.images is None for s in splits.values()):
        raise HashlearnInputError(
            f"dataset.features = {backbone_name!r} needs images, but {dataset.name!r} "
            "has only feature vectors; drop the features key."
        )
    backbone = build_backbone(backbone_name)
    backbone.image_size = image_size
    if torch.cuda.is_available():
        backbone = backbone.to("cuda")
    if not all(isinstance(s.images, np.ndarray) for s in splits.values()):
        # Lazy image files (NUS-WIDE, COCO, ...): decoded in loader workers, cached per split.
        from hashlearn.deep.features import with_backbone_features

        return with_backbone_features(
            dataset, backbone, backbone_name=f"{backbone_name}-{image_size}px", cache_dir=cache_dir
        )
    # One pass over the union of the splits' items (train items are often database items).
    union = np.unique(np.concatenate([s.indices for s in splits.values()]))
    pos = {int(i): k for k, i in enumerate(union)}
    images = None
    for split in splits.values():
        imgs = np.asarray(split.images)
        if images is None:
            images = np.empty((len(union), *imgs.shape[1:]), dtype=imgs.dtype)
        images[[pos[int(i)] for i in split.indices]] = imgs
    # Named by the items, not the protocol: protocols that place the same items in some split
    # (fashion-mnist's hashing, h2q and hswd all cover the 70,000 images) share one file. The
    # fingerprint inside (weights, images, preprocessing) decides whether it is reused.
    digest = hashlib.sha256(union.tobytes()).hexdigest()[:16]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset.name)[-40:]
    cache = cache_dir / f"{stem}-{backbone_name}-{image_size}px-{digest}.npz"
    log.info("%s features of %d %s images (cache %s)", backbone_name, len(union), stem, cache)
    features = extract_features(backbone, images, cache=cache, progress=progress)
    out: dict[str, Split | None] = {}
    for name, split in _splits(dataset).items():
        if split is None:
            out[name] = None
            continue
        rows = np.arange(len(split))
        out[name] = _subset(split, rows, X=features[[pos[int(i)] for i in split.indices]])
    return _rebuild(
        dataset, out, {"features": {"backbone": backbone_name, "image_size": image_size}}
    )


def flip_labels(dataset: Dataset, rate: float, seed: int) -> Dataset:
    """``rate`` of the training labels replaced by a different class, drawn uniformly.

    Seeded by the cell's seed and the rate; the validation, query and database labels stay
    clean (the robustness question is about corrupted supervision, not corrupted scoring).
    """
    train = dataset.train
    if train.y.ndim != 1:
        raise HashlearnInputError(
            f"dataset.label_noise flips single-label class ids; {dataset.name!r} is multi-label."
        )
    rng = np.random.default_rng([seed, int(round(rate * 1_000_000)), 31337])
    n_flip = int(round(rate * len(train)))
    rows = np.sort(rng.permutation(len(train))[:n_flip])
    y = train.y.copy()
    shift = rng.integers(1, dataset.n_classes, size=n_flip)
    y[rows] = (y[rows] + shift) % dataset.n_classes
    noisy = Split(X=train.X, y=y, images=train.images, indices=train.indices)
    note = {"label_noise": {"rate": rate, "seed": seed, "n_flipped": n_flip}}
    return _rebuild(dataset, {"train": noisy}, note)
