"""The per-batch training objective, built from a :class:`TrainConfig`, and the torch runtime
guards the trainer runs under."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from hashlearn.deep.config import TrainConfig
from hashlearn.deep.losses import get_loss
from hashlearn.deep.model import build_network
from hashlearn.deep.quantization import get_quantization
from hashlearn.deep.signs import activate

__all__ = ["Objective", "build_objective", "deterministic", "keep_torch_threads"]


class Objective(torch.nn.Module):
    """``loss(activate(z), labels, indices) + quantization(z or a)`` for one batch.

    ``a`` is the hash layer's pre-activation output and ``z = tanh(β a)`` (tanh losses; β = 1
    except under HashNet's continuation) or ``a``.
    The method's own penalty sees ``z``; HSWD/SWD (``quantization.on_pre_activation``) see
    ``a``, as in the HSWD authors' code (see :mod:`hashlearn.deep.model`).

    One module holding the network and the loss (whose parameters, e.g. GreedyHash's classifier,
    are trained too), so that DDP synchronises the gradients of both.
    """

    def __init__(self, network, loss, quantization, features_input: bool):
        super().__init__()
        self.network = network
        self.loss = loss
        self.quantization = quantization
        self.features_input = features_input

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.head_forward(x) if self.features_input else self.network(x)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        net = self.network
        return net.head_pre_activation(x) if self.features_input else net.pre_activation(x)

    def forward(self, x, labels, indices):
        a = self.pre_activation(x)
        scale = getattr(self.quantization, "activation_scale", 1.0)  # HashNet's continuation
        z = self.network.squash(a * scale if scale != 1.0 else a)
        similarity = self.loss(activate(z, self.loss.activation), labels, indices)
        on_a = getattr(self.quantization, "on_pre_activation", False)
        quant = torch.as_tensor(self.quantization(a if on_a else z))
        return similarity + quant, similarity.detach(), quant.detach(), z.detach()


def build_objective(
    config: TrainConfig, spec: dict, labels: torch.Tensor, *, download: bool = True
) -> tuple[Objective, dict, torch.Generator]:
    """The loss, network and quantization term of ``config``, on the CPU.

    They are built in this order — the loss (its own seeded generator; some draw from torch's
    global generator too), the network (weights from torch's global generator, which the
    trainer seeds with ``config.seed``), the quantization term (a CPU generator seeded
    ``config.seed + 1``) — so a seed always gives the same weights and targets.

    Args:
        config: the training configuration.
        spec: the input spec (:func:`hashlearn.deep.inputs.input_spec`).
        labels: every training item's multi-hot labels ``(n_train, n_classes)``, on the CPU
            (their shape sizes the loss; losses with a ``set_training_labels`` hook get them).
        download: let torchvision download ImageNet weights missing from torch's cache.

    Returns:
        ``(objective, network spec for config.json, the quantization term's generator)``;
        the generator's state is checkpointed so that a resumed run draws the same targets.
    """
    n_train, n_classes = labels.shape
    loss = get_loss(
        config.loss,
        config.n_bits,
        n_classes,
        n_train=n_train,
        random_state=config.seed,
        **config.loss_kwargs,
    )
    set_labels = getattr(loss, "set_training_labels", None)
    if set_labels is not None:
        set_labels(labels)
    net_spec = {
        "backbone": config.backbone,
        "n_bits": config.n_bits,
        # HashNet trains tanh(β a) in every strategy, two-stage ones included (the H²Q code).
        "activation": (
            loss.activation
            if getattr(loss, "continuation", False)
            else config.network_activation(loss.activation)
        ),
        "hidden": config.hidden_width(),
        "frozen": config.freeze_backbone,
        "in_channels": spec.get("in_channels", 1),
        "in_features": spec.get("in_features"),
        "cnn_width": config.cnn_width,
        "cnn_features": config.cnn_features,
        "weights": config.weights,
        "head_init_std": config.head_init_std,
    }
    if config.precision != "fp32":  # (older runs' specs have no such key)
        net_spec["precision"] = config.precision
    network = build_network(net_spec, download=download)
    generator = torch.Generator().manual_seed(config.seed + 1)
    quantization = get_quantization(
        config.quantization,
        weight=config.quantization_weight,
        loss=loss,
        n_projections=config.n_projections,
        generator=generator,
    )
    objective = Objective(network, loss, quantization, config.freeze_backbone)
    return objective, net_spec, generator


@contextmanager
def keep_torch_threads() -> Iterator[None]:
    """Restore torch's intra-op thread count after the block.

    numba's OpenMP threading layer (used by :mod:`hashlearn.metrics`) and threadpoolctl (used
    by the H²Q fit) set the OpenMP thread count that torch shares, silently raising a user's
    ``torch.set_num_threads(1)`` to the core count. On shared cores that made the small
    matrix products of a training step 20-60 times slower (OpenMP threads busy-waiting for
    a descheduled partner), so every call into them is wrapped.
    """
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


@contextmanager
def deterministic(device: torch.device | str = "cpu") -> Iterator[None]:
    """Use deterministic algorithms inside the block (restores the previous setting).

    On CUDA, cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG`` for reproducible matrix products (set
    to ``:4096:8`` unless the user chose a value), and a few kernels have no deterministic
    version (e.g. the backward pass of the small CNN's adaptive average pooling): they only
    warn there (``warn_only``) instead of stopping training.

    Our choice: torch's debugging aid that fills every new tensor's memory with NaN under
    deterministic algorithms (``torch.utils.deterministic.fill_uninitialized_memory``) is
    switched off inside the block. It changes no result (no kernel reads memory it did not
    write) and cost fine-tuning about 15 % of its images/s here (EfficientNet-Lite0, 224 px,
    2 threads; ``benchmarks/bench_pipeline.py``).
    """
    cuda = torch.device(device).type == "cuda"
    if cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=cuda)
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = previous_fill
