"""The hashing network: backbone → hash head → continuous codes ``z`` (their signs are the bits).

The head is a linear layer to ``n_bits`` outputs, optionally after one hidden layer (the "MLP
head over frozen features" of the deep hashing literature). What the similarity loss sees is
``activate(z)`` with the activation the loss declares (see :mod:`hashlearn.deep.signs`).

Which continuous tensor a quantization term sees is the term's attribute ``on_pre_activation``:
the method's own penalty sees ``z`` (what its paper penalises: the codes its loss sees, before
any sign); the distributional terms HSWD/SWD see the hash layer's *pre-activation* output
``a`` (``z = tanh(a)`` for tanh losses, ``z = a`` otherwise), as the HSWD authors' code does:
its networks emit ``a`` and the method losses apply ``tanh`` inside. The signs of ``a`` and
``z`` agree, so the bits do not depend on this choice; only the gradients do.

Mixed precision (``precision`` ``bf16`` / ``fp16``) runs the backbone under ``torch.autocast``;
the head, the losses and the quantization terms stay in float32 (their pairwise products and
sorted targets are where low precision would move results). On CUDA image batches are fed
channels-last (the memory layout cuDNN's convolutions prefer).
"""

from __future__ import annotations

import torch
from torch import nn

from hashlearn._validation import check_choice
from hashlearn.deep.backbones import build_backbone
from hashlearn.deep.config import CNN_FEATURES, CNN_WIDTH
from hashlearn.deep.pipeline import as_channels_last
from hashlearn.deep.signs import ACTIVATIONS
from hashlearn.deep.towers import is_tower

#: autocast dtype of each ``precision`` (None: float32, no autocast).
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class HashNetwork(nn.Module):
    """Backbone plus hash head.

    Args:
        backbone: module with ``out_features`` (see :mod:`hashlearn.deep.backbones`).
        n_bits: code length.
        activation: one of :data:`ACTIVATIONS`; ``"tanh"`` squashes the head's output.
        hidden: width of an optional hidden layer in the head (0 = linear head).
        frozen: keep the backbone fixed (no gradients, eval mode); the trainer then feeds
            cached backbone features straight to :meth:`head_forward`.
        head_init_std: initialise the hash layer N(0, std²), bias 0 (the H²Q code's 0.01,
            Lucas-Schwengber/h2q ``src/utils/architectures/CNNF_alexnet.py``); None: torch's
            default.
        precision: ``fp32``, ``bf16`` or ``fp16``: the backbone's autocast dtype.
    """

    def __init__(
        self,
        backbone: nn.Module,
        n_bits: int,
        activation: str = "tanh",
        hidden: int = 0,
        frozen: bool = False,
        head_init_std: float | None = None,
        precision: str = "fp32",
    ):
        super().__init__()
        check_choice(activation, ACTIVATIONS, "activation")
        check_choice(precision, tuple(AUTOCAST_DTYPES), "precision")
        self.precision = precision
        self.backbone = backbone
        self.activation = activation
        self.frozen = frozen
        d = backbone.out_features
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Linear(d, hidden), nn.ReLU()]
            d = hidden
        layers.append(nn.Linear(d, n_bits))
        if head_init_std is not None:
            nn.init.normal_(layers[-1].weight, 0.0, float(head_init_std))
            nn.init.zeros_(layers[-1].bias)
        self.head = nn.Sequential(*layers)
        self.n_bits = n_bits
        if frozen:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> HashNetwork:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def head_forward(self, features: torch.Tensor) -> torch.Tensor:
        """Continuous codes ``z`` from backbone features."""
        return self.squash(self.head(features))

    def head_pre_activation(self, features: torch.Tensor) -> torch.Tensor:
        """The head's linear output ``a`` (before ``tanh``) from backbone features."""
        return self.head(features)

    def squash(self, a: torch.Tensor) -> torch.Tensor:
        """``z`` from the pre-activation ``a``: ``tanh(a)`` for tanh losses, else ``a``."""
        return torch.tanh(a) if self.activation == "tanh" else a

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features, float32 (no gradient through a frozen backbone)."""
        x = as_channels_last(x)
        dtype = AUTOCAST_DTYPES[self.precision]
        with (
            torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None),
            torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen),
        ):
            out = self.backbone(x)
        return out.float()

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """The hash layer's linear output ``a`` (n, n_bits) from backbone inputs."""
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous codes ``z`` (n, n_bits) from backbone inputs; ``sgn z`` are the bits."""
        return self.head_forward(self.features(x))

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]


def build_network(
    spec: dict, *, download: bool = True, backbone_weights: bool = True
) -> HashNetwork:
    """Rebuild a :class:`HashNetwork` from the JSON ``spec`` stored in a run's config.

    Keys: ``backbone``, ``n_bits``, ``activation``, ``hidden``, ``frozen``, ``precision`` and the
    backbone's arguments ``in_channels``, ``in_features``, ``cnn_width``, ``cnn_features``,
    ``weights``. ``download`` lets torchvision fetch named ImageNet weights;
    ``backbone_weights=False`` skips reading them for a torchvision backbone whose weights the
    caller loads anyway (a fine-tuned run's ``model.safetensors`` holds them).
    """
    weights = spec.get("weights")
    name = spec["backbone"]
    if not backbone_weights and (name in ("alexnet", "vgg16", "resnet50") or is_tower(name)):
        weights = "none"
    backbone = build_backbone(
        spec["backbone"],
        in_channels=spec.get("in_channels", 1),
        in_features=spec.get("in_features"),
        width=spec.get("cnn_width", CNN_WIDTH),
        out_features=spec.get("cnn_features", CNN_FEATURES),
        weights=weights,
        download=download,
    )
    return HashNetwork(
        backbone,
        spec["n_bits"],
        activation=spec["activation"],
        hidden=spec.get("hidden", 0),
        frozen=spec.get("frozen", False),
        head_init_std=spec.get("head_init_std"),
        precision=spec.get("precision", "fp32"),
    )
