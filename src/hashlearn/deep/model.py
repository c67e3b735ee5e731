"""The hashing network: backbone → hash head → continuous codes ``z`` (their signs are the bits).

The head is a linear layer to ``n_bits`` outputs, optionally after one hidden layer (the "MLP
head over frozen features" of the deep hashing literature). What the similarity loss sees is
``activate(z)`` with the activation the loss declares (``HashLoss.activation``):

* ``"tanh"`` — ``z`` is already ``tanh(W h)``, so codes are ``z`` (DPSH, HashNet, DCH, ...);
* ``"identity"`` — ``z = W h`` unbounded;
* ``"sign_ste"`` — ``z = W h`` and the loss sees ``sgn z`` with a straight-through gradient
  (GreedyHash, Su et al., NeurIPS 2018, Eq. 6–7: forward ``sgn``, backward identity).

Quantization terms always see the continuous ``z``: the distance of ``z`` to ``{−1, +1}`` is
what they measure.
"""

from __future__ import annotations

import torch
from torch import nn

from hashlearn._validation import check_choice

ACTIVATIONS = ("tanh", "identity", "sign_ste")


def activate(z: torch.Tensor, activation: str) -> torch.Tensor:
    """Codes the loss sees for continuous outputs ``z`` (see the module docstring)."""
    if activation == "sign_ste":
        from hashlearn.deep.quantization import sign_ste

        return sign_ste(z)
    return z


class HashNetwork(nn.Module):
    """Backbone plus hash head.

    Args:
        backbone: module with ``out_features`` (see :mod:`hashlearn.deep.backbones`).
        n_bits: code length.
        activation: one of :data:`ACTIVATIONS`; ``"tanh"`` squashes the head's output.
        hidden: width of an optional hidden layer in the head (0 = linear head).
        frozen: keep the backbone fixed (no gradients, eval mode); the trainer then feeds
            cached backbone features straight to :meth:`head_forward`.
    """

    def __init__(
        self,
        backbone: nn.Module,
        n_bits: int,
        activation: str = "tanh",
        hidden: int = 0,
        frozen: bool = False,
    ):
        super().__init__()
        check_choice(activation, ACTIVATIONS, "activation")
        self.backbone = backbone
        self.activation = activation
        self.frozen = frozen
        d = backbone.out_features
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Linear(d, hidden), nn.ReLU()]
            d = hidden
        layers.append(nn.Linear(d, n_bits))
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
        z = self.head(features)
        return torch.tanh(z) if self.activation == "tanh" else z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous codes ``z`` (n, n_bits) from backbone inputs."""
        if self.frozen:
            with torch.no_grad():
                features = self.backbone(x)
        else:
            features = self.backbone(x)
        return self.head_forward(features)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]


def build_network(spec: dict) -> HashNetwork:
    """Rebuild a :class:`HashNetwork` from the JSON ``spec`` stored in a run's config.

    Keys: ``backbone``, ``n_bits``, ``activation``, ``hidden``, ``frozen`` and the backbone's
    arguments ``in_channels``, ``in_features``, ``cnn_width``, ``cnn_features``, ``weights``.
    """
    from hashlearn.deep.backbones import build_backbone

    backbone = build_backbone(
        spec["backbone"],
        in_channels=spec.get("in_channels", 1),
        in_features=spec.get("in_features"),
        width=spec.get("cnn_width", 16),
        out_features=spec.get("cnn_features", 128),
        weights=spec.get("weights"),
    )
    return HashNetwork(
        backbone,
        spec["n_bits"],
        activation=spec["activation"],
        hidden=spec.get("hidden", 0),
        frozen=spec.get("frozen", False),
    )
