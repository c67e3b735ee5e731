"""The trained deep hashing model: :class:`DeepHasher` and :func:`load_run`.

:class:`DeepHasher` has the encoder surface of every hashlearn method: ``n_bits``,
``transform(X)`` (continuous codes whose signs are the bits) and ``encode(X)`` (packed
``uint8`` codes), so the same evaluation (:func:`hashlearn.evaluation.evaluate_encoder`),
indexes and metrics take it. Scoring a run is :func:`hashlearn.evaluation.evaluate_run`
(``evaluation`` sits above ``deep``, so nothing here imports it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hashlearn._io import HashlearnFileError
from hashlearn._rowwise import rowwise_matmul
from hashlearn._validation import HashlearnInputError
from hashlearn.codes import pack
from hashlearn.data.images import ImageTransform
from hashlearn.deep.checkpoints import read_json, read_tensor_file
from hashlearn.deep.distributed import resolve_device
from hashlearn.deep.features import module_device, run_model, run_model_on_images
from hashlearn.deep.inputs import feature_tensor
from hashlearn.deep.model import build_network
from hashlearn.deep.runs import check_specs, load_network_state
from hashlearn.deep.two_stage import ROTATION_FILES, rotation_class

__all__ = ["DeepHasher", "load_run"]


class DeepHasher:
    """A trained deep hashing model: inputs (images or features) → binary codes.

    Encoding runs on the network's device (:attr:`device`, changed with :meth:`to`); codes and
    embeddings always come back as CPU NumPy arrays.

    Attributes:
        network: the :class:`~hashlearn.deep.model.HashNetwork` (eval mode).
        config: the run's configuration dict (training parameters, dataset name, protocol,
            split seed, network and input specs).
        h2q: the fitted rotation of a two-stage run (:class:`hashlearn.quantize.H2Q` for
            ``h2q``, :class:`hashlearn.quantize.ITQ` for ``itq``), else None.
    """

    def __init__(self, network: torch.nn.Module, config: dict, h2q: Any = None):
        self.network = network.eval()
        self.config = config
        self.h2q = h2q

    def __repr__(self) -> str:
        train = self.config.get("train", {})
        return (
            f"DeepHasher(loss={train.get('loss')!r}, quantization={train.get('quantization')!r}, "
            f"backbone={train.get('backbone')!r}, n_bits={self.n_bits})"
        )

    @property
    def n_bits(self) -> int:
        """Code length."""
        return int(self.network.n_bits)

    @property
    def input_kind(self) -> str:
        """``"features"`` (rows of ``X``) or ``"images"``: what :meth:`encode` takes."""
        return self.config["input"]["kind"]

    @property
    def device(self) -> torch.device:
        """Where the network runs."""
        return module_device(self.network)

    def to(self, device: str | torch.device) -> DeepHasher:
        """Move the network to ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``); self."""
        self.network.to(resolve_device(device))
        return self

    def embed(
        self,
        X: np.ndarray,
        batch_size: int | None = None,
        progress: bool = False,
        num_workers: int = 0,
    ) -> np.ndarray:
        """Continuous network outputs ``z`` (n, n_bits), before any H²Q rotation.

        A model trained with an image transform (always on lazy image files) takes any image
        sequence (lazy files or a uint8 array), prepared by the evaluation transform recorded in
        its input spec, in ``num_workers`` loader workers. Batches run under
        ``torch.inference_mode``; ``batch_size`` None picks one by device and image size
        (:func:`hashlearn.deep.pipeline.inference_batch_size`).

        A model over feature rows (the ``mlp`` backbone: a linear or one-hidden-layer head) on
        the CPU is evaluated row by row in float64 by :func:`rowwise_head`, so a row's output
        does not depend on the batch it comes in or the thread count (torch's ``Linear`` may
        change the last bits with either, and a value within 1e-7 of 0 then flips its bit).
        Image backbones run in torch: their outputs can differ in the last bits between batch
        shapes and thread counts.
        """
        spec = self.config["input"]
        if "transform" in spec:
            transform = ImageTransform(**spec["transform"])
            return run_model_on_images(
                self.network,
                X,
                transform,
                batch_size=batch_size,
                num_workers=num_workers,
                progress=progress,
            )
        X = np.asarray(X)
        if self.input_kind == "features":
            if X.ndim != 2 or X.shape[1] != spec["in_features"]:
                raise HashlearnInputError(
                    f"this model takes feature rows of length {spec['in_features']}, got an "
                    f"array of shape {X.shape}."
                )
        elif X.ndim not in (3, 4) or tuple(X.shape[1:3]) != tuple(spec["image_shape"][:2]):
            raise HashlearnInputError(
                f"this model takes images of shape (n, {spec['image_shape'][0]}, "
                f"{spec['image_shape'][1]}[, C]), got {X.shape}."
            )
        if self.input_kind == "features" and self.device.type == "cpu":
            rows = rowwise_head(self.network, X, spec["mean"], spec["std"])
            if rows is not None:
                return rows
        return run_model(
            self.network,
            X,
            self.input_kind,
            mean=spec["mean"],
            std=spec["std"],
            batch_size=batch_size,
            progress=progress,
        )

    def transform(self, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        """Continuous codes whose signs are the bits (rotated by H²Q in a two-stage run);
        ``kwargs`` are those of :meth:`embed`."""
        z = self.embed(X, **kwargs)
        return self.h2q.transform(z) if self.h2q is not None else z

    def encode(self, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        """Packed codes, ``uint8`` of shape (n, ceil(n_bits / 8))."""
        return pack(self.transform(X, **kwargs))


def rowwise_head(
    network: torch.nn.Module,
    X: np.ndarray,
    mean: float,
    std: float,
    *,
    backbone_features: bool = False,
) -> np.ndarray | None:
    """The continuous codes of a feature-input :class:`HashNetwork` computed row by row:
    standardise, each ``Linear`` by :func:`hashlearn._rowwise.rowwise_matmul` (float64, a fixed
    summation order per row) plus its bias, ``ReLU``, then the squash; float32 ``(n, n_bits)``.

    ``X`` are the network's inputs (its backbone must then be the pass-through ``mlp``), or,
    with ``backbone_features``, a frozen backbone's outputs (the head alone runs). None when the
    head is not made of ``Linear`` / ``ReLU`` layers (then torch runs it). Inputs the torch path
    refuses (NaN, or beyond float32 once standardised) raise the same error."""
    from hashlearn.deep.backbones import Identity

    layers = list(getattr(network, "head", ()))
    passes_through = isinstance(getattr(network, "backbone", None), Identity)
    if (
        len(X) == 0
        or not (passes_through or backbone_features)
        or not all(isinstance(layer, torch.nn.Linear | torch.nn.ReLU) for layer in layers)
    ):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        a = (np.asarray(X, dtype=np.float64) - mean) / std
    if not np.isfinite(a).all() or np.abs(a).max() > np.finfo(np.float32).max:
        feature_tensor(np.asarray(X), mean, std)  # raises its error naming the problem
    for layer in layers:
        if isinstance(layer, torch.nn.ReLU):
            np.maximum(a, 0.0, out=a)
            continue
        weight = layer.weight.detach().to(torch.float64).numpy()
        a = rowwise_matmul(a, weight.T)
        if layer.bias is not None:
            a += layer.bias.detach().to(torch.float64).numpy()
    if network.activation == "tanh":
        np.tanh(a, out=a)
    return a.astype(np.float32)


def load_run(run_dir: str | os.PathLike, device: str | torch.device = "auto") -> DeepHasher:
    """Load the trained model of a run directory written by ``hashlearn train`` or a
    :class:`~hashlearn.deep.trainer.Trainer` given a ``run_dir``.

    ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) is where the model will encode; it
    need not be the device the run was trained on (weights are stored from CPU copies).
    """
    target = resolve_device(device)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise HashlearnFileError(f"run directory {run_dir} does not exist.")
    config = read_json(run_dir / "config.json")
    if not (run_dir / "model.safetensors").is_file():
        raise HashlearnFileError(
            f"{run_dir} has no model.safetensors yet: training has not finished an epoch; "
            "continue the training with `resume=True`."
        )
    weights_path = run_dir / "model.safetensors"
    weights, meta = read_tensor_file(weights_path)
    check_specs(weights_path, meta, config)
    spec = config["network"]
    # A fine-tuned (or randomly initialised frozen) backbone's weights are in model.safetensors.
    network = build_network(spec, backbone_weights=bool(spec.get("frozen")))
    load_network_state(network, weights, source=weights_path)
    inputs = config.get("input", {})
    old_pretrained_on_arrays = hasattr(network.backbone, "image_size") and not (
        "transform" in inputs or inputs.get("native_size")
    )
    if old_pretrained_on_arrays:  # trained when pretrained networks resized inputs to 224 px
        network.backbone.image_size = 224
    network.to(target)
    h2q = None
    quantization = config["train"]["quantization"]
    if quantization in ROTATION_FILES:
        path = run_dir / ROTATION_FILES[quantization]
        if not path.is_file():
            raise HashlearnFileError(
                f"{run_dir} is a two-stage {quantization} run but {path.name} is missing: "
                "training did not finish; continue it with `resume=True`."
            )
        h2q = rotation_class(quantization).load(path)
        _check_rotation(path, h2q, network.n_bits)
    return DeepHasher(network, config, h2q)


def _check_rotation(path: Path, rotation: Any, n_bits: int) -> None:
    """The rotation file ``path`` must map ``n_bits``-wide embeddings to ``n_bits`` bits."""
    try:
        shape = rotation.transform(np.ones((1, n_bits))).shape
    except Exception as exc:
        shape = f"an error ({type(exc).__name__}: {exc})"
    if shape != (1, n_bits):
        raise HashlearnFileError(
            f"{path} does not fit the {n_bits}-bit network of its run: it maps a {n_bits}-wide "
            f"embedding to {shape}; it was edited or belongs to another run."
        )
