"""The wrapper every pretrained image network is used through: :class:`PretrainedImageNet`
(grayscale to 3 channels, the network's own normalisation, flat pooled features)."""

from __future__ import annotations

import torch
from torch import nn

from hashlearn._validation import HashlearnInputError

# ImageNet normalisation used by the torchvision and EfficientNet networks (one definition,
# beside the image readers that also apply it).
from hashlearn.data.images import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PretrainedImageNet"]


class PretrainedImageNet(nn.Module):
    """Wrap an ImageNet network: grayscale → 3 channels, ImageNet normalisation, pooled features.

    ``body`` maps a normalised ``(n, 3, H, W)`` batch to ``(n, out_features)``. Inputs are used
    at the size they come in: resizing is the job of the run's transform
    (:mod:`hashlearn.deep.pipeline`), so a small-image stand-in never pays for 224-px inputs it
    did not ask for. ``reloadable`` says the weights come from a file or torchvision's cache
    (a frozen backbone is then not stored in the run); ``min_size`` is the smallest side the
    network's layers accept (a clear error below it). Setting ``image_size`` (as
    :mod:`hashlearn.reproduce` does for array datasets) resizes every batch to that square size.
    """

    input_kind = "images"

    def __init__(
        self,
        body: nn.Module,
        out_features: int,
        *,
        reloadable: bool = True,
        min_size: int | None = None,
        name: str = "this backbone",
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
    ):
        super().__init__()
        self.body = body
        self.out_features = out_features
        self.reloadable = reloadable
        self.min_size = min_size
        self.name = name
        self.image_size: int | None = None
        self.register_buffer("mean", torch.tensor(tuple(mean)).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(tuple(std)).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        size = self.image_size
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            x = nn.functional.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False
            )
        if self.min_size is not None and min(x.shape[-2:]) < self.min_size:
            raise HashlearnInputError(
                f"{self.name} needs images of at least {self.min_size}x{self.min_size} pixels, "
                f"got {x.shape[-2]}x{x.shape[-1]}; resize them with a transform (`transform="
                "'h2q'` or 'deephash': resize 256, crop 224) or use a smaller network ('cnn')."
            )
        return self.body((x - self.mean) / self.std)
