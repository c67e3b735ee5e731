"""A ``torch.utils.data.Dataset`` over a split's images, for DataLoader workers.

:class:`ImageDataset` wraps any image sequence — a uint8 array ``(n, H, W[, 3])`` held in
memory, or a lazy :class:`hashlearn.data.images.ImageFiles` whose files are decoded on demand
inside the workers — and applies a :class:`hashlearn.data.images.ImageTransform` (resize, crop,
normalise; random crop and flip for training). Random augmentation is seeded per item and
epoch (``numpy.random.default_rng([seed, epoch, index])``), so a run gives the same crops
whatever the number of workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hashlearn._validation import HashlearnInputError
from hashlearn.data.images import ImageTransform


class ImageDataset(Dataset):
    """Items ``(image tensor (C, H, W) float32, label, index)`` of an image sequence.

    Args:
        images: uint8 array ``(n, H, W)`` / ``(n, H, W, 3)``, or an ``ImageFiles`` sequence.
        labels: optional labels (class ids or multi-hot rows), one per image; ``-1`` if absent.
        transform: an :class:`ImageTransform`; ``None`` only scales pixels to [0, 1] (images
            must then share one size to be batched).
        seed: seed of the training augmentation.
    """

    def __init__(
        self,
        images: Any,
        labels: Any = None,
        transform: ImageTransform | None = None,
        *,
        seed: int = 0,
    ):
        if labels is not None and len(labels) != len(images):
            raise HashlearnInputError(
                f"{len(labels)} labels for {len(images)} images; pass one label per image."
            )
        self.images = images
        self.labels = None if labels is None else np.asarray(labels)
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the augmentation of this epoch (call before iterating a new epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image = np.asarray(self.images[int(index)])
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            array = self.transform(image, rng)
        else:
            array = image.astype(np.float32) / np.float32(255.0)
            array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        label = torch.as_tensor(-1 if self.labels is None else self.labels[int(index)])
        return torch.from_numpy(np.ascontiguousarray(array)), label, int(index)


def image_loader(
    images: Any,
    labels: Any = None,
    *,
    transform: ImageTransform | None = None,
    batch_size: int = 64,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader over :class:`ImageDataset` (shuffling seeded by ``seed``)."""
    dataset = ImageDataset(images, labels, transform, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=generator,
        persistent_workers=False,
    )
