"""Inputs for the networks, and backbone feature extraction cached on disk.

Frozen-backbone training (an MLP head over fixed features) is the cheap way to compare many
losses and quantization strategies: the expensive backbone runs once per item, and its output
is cached in an ``.npz`` file (no pickle, atomic write) keyed by a fingerprint of the backbone
weights and of the input array, so a changed network or data set never reuses a stale cache.
For image sets too large to fingerprint pixel by pixel (lazy image files),
:func:`extract_split_features` keys the cache by backbone name, weights and the split's
manifest fingerprint instead, and :func:`with_backbone_features` gives every split its
features.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hashlearn._io import HashlearnFileError, load_arrays, save_arrays
from hashlearn._validation import HashlearnInputError
from hashlearn.data.base import Dataset
from hashlearn.data.download import user_cache_dir
from hashlearn.data.images import ImageTransform
from hashlearn.deep.inputs import feature_tensor
from hashlearn.deep.pipeline import as_channels_last, encode_inputs

log = logging.getLogger("hashlearn")


def images_to_tensor(images: np.ndarray, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """``uint8`` images ``(n, H, W)`` or ``(n, H, W, C)`` → float ``(n, C, H, W)``.

    Pixels are scaled to [0, 1], then standardised with the scalar ``mean`` and ``std``.
    The result is channels-last in memory (:func:`~hashlearn.deep.pipeline.as_channels_last`):
    the pixels keep their ``(n, H, W, C)`` order, with no transposing copy.
    """
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    elif arr.ndim != 4:
        raise HashlearnInputError(
            f"images must have shape (n, H, W) or (n, H, W, C), got {arr.shape}."
        )
    scale = 255.0 if arr.dtype == np.uint8 else 1.0
    # A (n, C, H, W) view of the (n, H, W, C) pixels: channels-last strides, kept by the
    # element-wise steps below.
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / scale
    return as_channels_last((x - mean) / std)


def to_batch(
    inputs: np.ndarray, kind: str, mean: float, std: float, device: torch.device | None = None
) -> torch.Tensor:
    """One batch of raw inputs (images or feature rows) as the float tensor a model takes,
    on ``device`` (converted and normalised on the CPU, so the values match on every device)."""
    if kind == "images":
        batch = images_to_tensor(inputs, mean, std)
    else:
        batch = feature_tensor(inputs, mean, std)
    return batch if device is None else batch.to(device)


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for a stateless module)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def run_model(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    inputs: np.ndarray,
    kind: str,
    *,
    mean: float = 0.0,
    std: float = 1.0,
    batch_size: int | None = None,
    progress: bool = False,
    desc: str = "encoding",
) -> np.ndarray:
    """Apply ``model`` (a module, or a bound method of one) in eval mode to ``inputs`` batch by
    batch, on the module's device, under ``torch.inference_mode``; float32 NumPy ``(n, out)``
    on the CPU (:func:`hashlearn.deep.pipeline.encode_inputs`)."""
    owner = model if isinstance(model, nn.Module) else model.__self__
    return encode_inputs(
        model,
        inputs,
        device=module_device(owner),
        kind=kind,
        mean=mean,
        std=std,
        batch_size=batch_size,
        progress=progress,
        desc=desc,
        convert=to_batch,
    )


def fingerprint(module: nn.Module, *arrays: np.ndarray) -> str:
    """SHA-256 over a module's state (names, shapes, values) and the given arrays."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        digest.update(f"{arr.dtype}{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def extract_features(
    backbone: nn.Module,
    images: np.ndarray,
    *,
    cache: str | os.PathLike | None = None,
    mean: float = 0.0,
    std: float = 1.0,
    batch_size: int | None = None,
    progress: bool = False,
    transform: ImageTransform | None = None,
    num_workers: int = 0,
) -> np.ndarray:
    """Backbone features of ``images`` (float32 ``(n, out_features)``), cached in ``cache``.

    With a ``transform`` each image is prepared by it (in ``num_workers`` loader workers)
    instead of the scalar ``mean`` / ``std`` standardisation.

    The backbone runs on its own device (move it with ``backbone.to("cuda")``); the features
    come back as CPU NumPy. A cache file whose fingerprint (backbone weights, images,
    normalisation) does not match is recomputed and overwritten atomically.
    """
    key = None
    if cache is not None:  # (hashing every pixel costs nothing to a run without a cache)
        described = json.dumps(None if transform is None else transform.describe()).encode()
        key = fingerprint(
            backbone, np.asarray(images), np.array([mean, std]), np.frombuffer(described, np.uint8)
        )
    if cache is not None and Path(cache).is_file():
        try:
            arrays, meta = load_arrays(cache)
            if meta.get("fingerprint") == key:
                return arrays["features"]
            log.info("feature cache %s is stale; recomputing", cache)
        except HashlearnFileError as exc:
            log.warning("ignoring unreadable feature cache: %s", exc)
    if transform is not None:
        features = run_model_on_images(
            backbone,
            images,
            transform,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
            desc="extracting features",
        )
    else:
        features = run_model(
            backbone,
            images,
            "images",
            mean=mean,
            std=std,
            batch_size=batch_size,
            progress=progress,
            desc="extracting features",
        )
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        save_arrays(cache, {"features": features}, {"fingerprint": key, "n": len(features)})
    return features


def pretrain_classifier(
    backbone: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    epochs: int = 2,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    mean: float = 0.0,
    std: float = 1.0,
    progress: bool = False,
) -> nn.Module:
    """Train ``backbone`` with a linear softmax classifier on ``(images, labels)`` (cross-entropy;
    multi-hot labels use binary cross-entropy), seeded. Used to make a frozen feature extractor
    from the training split only, when no pretrained network is available. Trains on the
    backbone's device (the classifier is initialised on the CPU, then moved there)."""
    torch.manual_seed(seed)
    device = module_device(backbone)
    classifier = nn.Linear(backbone.out_features, n_classes).to(device)
    params = list(backbone.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    y = torch.as_tensor(np.asarray(labels)).to(device)
    multilabel = y.ndim == 2
    generator = torch.Generator().manual_seed(seed)
    backbone.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=generator).numpy()
        bar = tqdm(
            range(0, len(order), batch_size),
            desc=f"pretrain {epoch + 1}/{epochs}",
            disable=not progress,
            leave=False,
        )
        for start in bar:
            idx = order[start : start + batch_size]
            logits = classifier(backbone(to_batch(images[idx], "images", mean, std, device)))
            target = y[torch.from_numpy(idx).to(device)]
            if multilabel:
                loss = nn.functional.binary_cross_entropy_with_logits(logits, target.float())
            else:
                loss = nn.functional.cross_entropy(logits, target.long())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    backbone.eval()
    return backbone


def run_model_on_images(
    model: nn.Module,
    images: Any,
    transform: ImageTransform | None,
    *,
    batch_size: int | None = None,
    num_workers: int = 0,
    progress: bool = False,
    desc: str = "encoding",
) -> np.ndarray:
    """Apply ``model`` in eval mode to an image sequence (a uint8 array or lazy
    :class:`~hashlearn.data.images.ImageFiles`), each image decoded and transformed by
    ``transform`` in ``torch.utils.data`` workers (``num_workers``); float32 ``(n, out)``."""
    return encode_inputs(
        model,
        images,
        device=module_device(model),
        transform=transform,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        desc=desc,
    )


def frozen_features(
    backbone: torch.nn.Module,
    X: Any,
    spec: dict,
    *,
    cache: Any = None,
    num_workers: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """A frozen backbone's features of ``X`` prepared as ``spec`` says (its evaluation
    transform, or the scalar normalisation of arrays), cached in ``cache``
    (:func:`extract_features`)."""
    transform = ImageTransform(**spec["transform"]) if "transform" in spec else None
    return extract_features(
        backbone,
        X,
        mean=spec["mean"],
        std=spec["std"],
        progress=progress,
        cache=cache,
        transform=transform,
        num_workers=num_workers,
        batch_size=batch_size,
    )


def feature_cache_key(
    backbone_name: str, weights_sha256: str, split_fingerprint: str, transform: dict
) -> str:
    """SHA-256 naming one split's backbone features: backbone name, weights, split, transform."""
    record = {
        "backbone": backbone_name,
        "weights_sha256": weights_sha256,
        "split": split_fingerprint,
        "transform": transform,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def extract_split_features(
    backbone: nn.Module,
    dataset: Dataset,
    split: str,
    *,
    backbone_name: str,
    cache_dir: str | os.PathLike | None = None,
    transform: ImageTransform | None = None,
    batch_size: int | None = None,
    num_workers: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Frozen-backbone features of one split's images, cached on disk.

    Images (in memory or lazy files) are decoded and transformed in ``torch.utils.data``
    workers (``num_workers``) and run through ``backbone`` on its device. The cache file in
    ``cache_dir`` (default ``$XDG_CACHE_HOME/hashlearn/features``) is keyed by
    :func:`feature_cache_key` — the backbone name, the SHA-256 of its weights, the split's
    :meth:`~hashlearn.data.Dataset.split_fingerprint` (dataset files' checksums, protocol,
    items) and the transform — so another network, other weights, other files or another split
    never reuse it. ``transform`` defaults to DeepHash-pytorch's evaluation preprocessing
    (resize 256, centre crop 224) without normalisation, which hashlearn's pretrained backbones
    apply themselves.
    """
    images = getattr(dataset, split).images if split in dataset.splits() else None
    if images is None:
        raise HashlearnInputError(
            f"dataset {dataset.name!r} has no images in split {split!r}; "
            f"its splits: {', '.join(dataset.splits())}."
        )
    transform = transform or ImageTransform(mean=None, std=None)
    weights = fingerprint(backbone)
    key = feature_cache_key(
        backbone_name, weights, dataset.split_fingerprint(split), transform.describe()
    )
    folder = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "features"
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset.name)[-40:]
    path = folder / f"{stem}-{split}-{backbone_name}-{key[:16]}.npz"
    if path.is_file():
        try:
            arrays, meta = load_arrays(path)
            if meta.get("key") == key and len(arrays["features"]) == len(images):
                log.info("backbone features of %s/%s from cache %s", dataset.name, split, path)
                return arrays["features"]
        except (HashlearnFileError, KeyError) as exc:
            log.warning("ignoring unreadable feature cache %s: %s", path, exc)
    features = run_model_on_images(
        backbone,
        images,
        transform,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        desc=f"features {split}",
    )
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "key": key,
        "backbone": backbone_name,
        "weights_sha256": weights,
        "split_fingerprint": dataset.split_fingerprint(split),
        "transform": transform.describe(),
        "dataset": dataset.name,
        "split": split,
        "n": len(features),
    }
    save_arrays(path, {"features": features}, meta)
    return features


def with_backbone_features(
    dataset: Dataset, backbone: nn.Module, *, backbone_name: str, **kwargs: Any
) -> Dataset:
    """Set every split's ``X`` to its (cached) backbone features and return ``dataset``.

    Lets feature-based methods (shallow hashing, the ``mlp`` head) run on image sets whose
    images are read lazily; ``kwargs`` go to :func:`extract_split_features`. The manifest
    records the backbone and the SHA-256 of its weights.
    """
    done: dict[int, np.ndarray] = {}
    for name, split in dataset.splits().items():
        if id(split) not in done:
            done[id(split)] = extract_split_features(
                backbone, dataset, name, backbone_name=backbone_name, **kwargs
            )
        split.X = done[id(split)]
    dataset.manifest["features"] = {
        "backbone": backbone_name,
        "weights_sha256": fingerprint(backbone),
    }
    return dataset
