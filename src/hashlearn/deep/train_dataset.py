"""Training on a :class:`hashlearn.data.Dataset`, whose image splits may be lazy files
(:class:`hashlearn.data.images.ImageFiles`): :func:`train_on_dataset`.

Image sets too large for memory are read file by file, decoded and transformed in
``torch.utils.data`` workers (:mod:`hashlearn.deep.pipeline`). Any image backbone is fine-tuned
end to end on them, as on in-memory arrays, with the run's named transform (``h2q`` by default
on files). The cheap option, ``freeze_backbone=True`` with a pretrained backbone, extracts each
split's backbone features once and caches them on disk
(:func:`hashlearn.deep.features.extract_split_features`, keyed by backbone, weights, split
manifest and transform); only the hash head trains, on those features. The run's input spec
records the transform, so :meth:`hashlearn.deep.DeepHasher.encode` prepares query and database
images the same way (lazy files or in-memory arrays alike).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._validation import HashlearnInputError
from hashlearn.data.base import Dataset
from hashlearn.data.images import ImageTransform
from hashlearn.deep.backbones import PRETRAINED, build_backbone
from hashlearn.deep.config import TrainConfig, input_kind
from hashlearn.deep.distributed import resolve_device
from hashlearn.deep.features import extract_split_features
from hashlearn.deep.hasher import DeepHasher
from hashlearn.deep.pipeline import image_transforms, resolve_transform
from hashlearn.deep.towers import is_tower
from hashlearn.deep.trainer import Trainer

__all__ = ["frozen_split_features", "is_lazy", "train_on_dataset"]


def is_lazy(images: Any) -> bool:
    """Whether a split's ``images`` are a lazy sequence rather than an in-memory array."""
    return images is not None and not isinstance(images, np.ndarray)


def frozen_split_features(
    config: TrainConfig,
    dataset: Dataset,
    *,
    cache_dir: str | os.PathLike | None = None,
    num_workers: int = 0,
    progress: bool = False,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, ImageTransform]:
    """``(train features, val features or None, transform)`` of ``dataset``'s lazy images
    through ``config``'s frozen pretrained backbone, cached in ``cache_dir`` (default the user
    cache; see :func:`~hashlearn.deep.features.extract_split_features`).

    The transform is the evaluation transform of ``config.transform`` (``auto``: resize 256,
    centre crop 224), without normalisation (the backbone normalises)."""
    pretrained = config.backbone in PRETRAINED or is_tower(config.backbone)
    if not config.freeze_backbone or not pretrained:
        raise HashlearnInputError(
            f"cached frozen features of {dataset.name!r} need a frozen pretrained backbone "
            f"(one of {', '.join(PRETRAINED)}, `freeze_backbone=True`); got "
            f"backbone={config.backbone!r}, freeze_backbone={config.freeze_backbone}."
        )
    backbone = build_backbone(config.backbone, weights=config.weights, download=download)
    backbone.to(resolve_device(config.device))
    transform = image_transforms(resolve_transform(config.transform, lazy=True))[1]
    if transform is None:
        raise HashlearnInputError(
            "lazy image files differ in size and need a transform (`transform='h2q'` or "
            "'deephash'); 'none' works only for in-memory arrays."
        )
    features = {
        split: extract_split_features(
            backbone,
            dataset,
            split,
            backbone_name=config.backbone,
            cache_dir=cache_dir,
            transform=transform,
            num_workers=num_workers,
            progress=progress,
        )
        for split in ("train", "val")
        if split in dataset.splits()
    }
    return features["train"], features.get("val"), transform


def train_on_dataset(
    config: TrainConfig,
    dataset: Any,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    feature_cache_dir: str | Path | None = None,
    download: bool = True,
    data_dir: str | os.PathLike | None = None,
) -> DeepHasher:
    """Train on a :class:`hashlearn.data.Dataset`: its ``train`` split, validated on its ``val``
    split (or a seeded hold-out of ``train`` when it has none), never on ``query``.

    The ``mlp`` backbone reads the split features ``X``; image backbones read ``images``
    (arrays or lazy files, fine-tuned end to end; with a frozen pretrained backbone the lazy
    files' features are extracted once and cached in ``feature_cache_dir``, default the user
    cache). ``download`` lets torchvision fetch ImageNet weights; ``data_dir`` (the folder the
    dataset was read from) is recorded in ``config.json`` so that
    :func:`~hashlearn.evaluation.evaluate_run` finds the data again.
    """
    field_name = "X" if input_kind(config.backbone) == "features" else "images"
    train, val = dataset.train, dataset.val
    if getattr(train, field_name) is None:
        raise HashlearnInputError(
            f"dataset {dataset.name!r} has no images; use `backbone='mlp'` on its features."
        )
    extra = {
        "dataset": {
            "name": dataset.name,
            "protocol": dataset.protocol,
            "split_seed": dataset.split_seed,
            "n_classes": dataset.n_classes,
            "validation": "val split" if val is not None else "train hold-out",
            "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
        }
    }
    trainer = Trainer(
        config, run_dir, resume=resume, progress=progress, extra_config=extra, download=download
    )
    X, X_val, transform = getattr(train, field_name), None, None
    if val is not None:
        X_val = getattr(val, field_name)
    if field_name == "images" and is_lazy(X) and config.freeze_backbone:
        X, X_val, transform = frozen_split_features(
            config,
            dataset,
            cache_dir=feature_cache_dir,
            num_workers=config.num_workers,
            progress=progress,
            download=download,
        )
    y_val = None if val is None else val.y
    if val is None and config.val_from_database:
        X_val, y_val = _database_validation(config, dataset, field_name)
        extra["dataset"]["validation"] = "database sample outside train"
    return trainer.fit(
        X, train.y, X_val, y_val, n_classes=dataset.n_classes, image_transform=transform
    )


def _database_validation(config: TrainConfig, dataset: Any, field_name: str) -> tuple:
    """``val_queries`` database items outside the training split (seeded by ``config.seed``),
    for ``val_from_database``: train on the whole split, never validate on the query split."""

    database = dataset.database
    values = getattr(database, field_name)
    if is_lazy(values):
        raise HashlearnInputError(
            "`val_from_database` needs in-memory data; give the dataset a validation split."
        )
    outside = np.flatnonzero(~np.isin(database.indices, dataset.train.indices))
    if len(outside) == 0:
        raise HashlearnInputError(
            f"`val_from_database`: every database item of {dataset.name!r} is a training item; "
            "use a protocol with a validation split or a database disjoint from train."
        )
    rng = np.random.default_rng(config.seed + 4)
    pick = np.sort(rng.permutation(outside)[: config.val_queries])
    return values[pick], database.y[pick]
