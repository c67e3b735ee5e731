"""Run directories: configuration, resumable checkpoints, the trained hasher, evaluation.

Layout of a run directory::

    config.json                 what was trained: TrainConfig, network spec, input spec, dataset
    model.safetensors           weights of the best epoch so far (by validation mAP)
    h2q.npz / itq.npz           two-stage rotation (only for --quantization h2q / itq)
    result.json                 final status, history, best epoch, H²Q fit details
    checkpoints/latest.json     name of the newest complete checkpoint folder
    checkpoints/epoch-NNNN/     model.safetensors, optimizer.safetensors, state.json

Nothing is pickled: tensors go to safetensors, everything else to JSON. Every file is written
to a temporary name and renamed; a checkpoint folder is completed under a temporary name and
renamed, and only then does ``latest.json`` point at it, so an interruption at any moment
leaves the previous good checkpoint in place.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from hashlearn._io import HashlearnFileError, atomic_path, write_json_atomic
from hashlearn._validation import HashlearnInputError
from hashlearn.codes import pack

CHECKPOINTS = "checkpoints"
KEEP_CHECKPOINTS = 2


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` to a safetensors file atomically (copies, contiguous, on CPU)."""
    payload = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(payload, str(tmp))


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise HashlearnFileError(f"missing file {path}; the run directory is incomplete.")
    try:
        return load_file(str(path))
    except Exception as exc:
        raise HashlearnFileError(f"{path} is damaged ({type(exc).__name__}: {exc}).") from None


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise HashlearnFileError(f"missing file {path}; is this a hashlearn run directory?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise HashlearnFileError(f"{path} is not valid JSON ({exc}).") from None


# -- optimizer / scheduler state without pickle ---------------------------------------------
def split_state(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer ``state_dict`` into tensors (for safetensors) and JSON."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def join_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Inverse of :func:`split_state`."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for idx, entry in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


# -- checkpoints -----------------------------------------------------------------------------
def write_checkpoint(
    run_dir: Path,
    epoch: int,
    weights: dict[str, torch.Tensor],
    optimizer_tensors: dict[str, torch.Tensor],
    state: dict,
) -> Path:
    """Write checkpoint ``epoch`` as a complete folder, then point ``latest.json`` at it."""
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{epoch:04d}"
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_tensors(tmp / "model.safetensors", weights)
    save_tensors(tmp / "optimizer.safetensors", optimizer_tensors)
    write_json_atomic(tmp / "state.json", state)
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_json_atomic(root / "latest.json", {"epoch": epoch, "folder": name})
    # Prune older folders only after the pointer moved.
    folders = sorted(p for p in root.glob("epoch-*") if p.is_dir())
    for old in folders[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint(run_dir: str | os.PathLike) -> tuple[dict, dict, dict] | None:
    """``(weights, optimizer_tensors, state)`` of the newest checkpoint, or None if none."""
    pointer = Path(run_dir) / CHECKPOINTS / "latest.json"
    if not pointer.is_file():
        return None
    folder = Path(run_dir) / CHECKPOINTS / read_json(pointer)["folder"]
    return (
        load_tensors(folder / "model.safetensors"),
        load_tensors(folder / "optimizer.safetensors"),
        read_json(folder / "state.json"),
    )


# -- the trained hasher ----------------------------------------------------------------------
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

    @property
    def n_bits(self) -> int:
        return int(self.network.n_bits)

    @property
    def input_kind(self) -> str:
        return self.config["input"]["kind"]

    @property
    def device(self) -> torch.device:
        """Where the network runs."""
        from hashlearn.deep.features import module_device

        return module_device(self.network)

    def to(self, device: str | torch.device) -> DeepHasher:
        """Move the network to ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``); self."""
        from hashlearn.deep.config import resolve_device

        self.network.to(resolve_device(device))
        return self

    def embed(self, X: np.ndarray, batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """Continuous network outputs ``z`` (n, n_bits), before any H²Q rotation."""
        from hashlearn.deep.features import run_model

        spec = self.config["input"]
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
        """Continuous codes whose signs are the bits (rotated by H²Q in a two-stage run)."""
        z = self.embed(X, **kwargs)
        return self.h2q.transform(z) if self.h2q is not None else z

    def encode(self, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        """Packed codes, ``uint8`` of shape (n, ceil(n_bits / 8))."""
        return pack(self.transform(X, **kwargs))


def network_state(network: torch.nn.Module, loss: torch.nn.Module | None) -> dict:
    """Weights to save: the network (minus a frozen pretrained backbone, which is reloaded from
    its own weights file) and the loss's parameters/buffers under ``loss.``.

    The tensors are the live ones (they change as training goes on); use :func:`cpu_copy` to
    keep a snapshot."""
    skip = network.frozen and network.backbone.__class__.__name__ == "PretrainedImageNet"
    state = {
        k: v for k, v in network.state_dict().items() if not (skip and k.startswith("backbone."))
    }
    if loss is not None:
        state.update({f"loss.{k}": v for k, v in loss.state_dict().items()})
    return state


def cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A snapshot of ``state`` on the CPU (copied even when it already is there)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def load_network_state(network: torch.nn.Module, state: dict, loss: Any = None) -> None:
    net_state = {k: v for k, v in state.items() if not k.startswith(("loss.", "__rng__."))}
    missing, unexpected = network.load_state_dict(net_state, strict=False)
    missing = [k for k in missing if not (network.frozen and k.startswith("backbone."))]
    if missing or unexpected:
        raise HashlearnFileError(
            f"saved weights do not match the network (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); the run directory belongs to another configuration."
        )
    if loss is not None:
        loss_state = {k[5:]: v for k, v in state.items() if k.startswith("loss.")}
        if loss_state:
            loss.load_state_dict(loss_state)


def load_run(run_dir: str | os.PathLike, device: str | torch.device = "auto") -> DeepHasher:
    """Load the trained model of a run directory written by ``hashlearn train``.

    ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) is where the model will encode; it
    need not be the device the run was trained on (weights are stored from CPU copies).
    """
    from hashlearn.deep.config import resolve_device
    from hashlearn.deep.model import build_network

    target = resolve_device(device)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise HashlearnFileError(f"run directory {run_dir} does not exist.")
    config = read_json(run_dir / "config.json")
    if not (run_dir / "model.safetensors").is_file():
        raise HashlearnFileError(
            f"{run_dir} has no model.safetensors yet: training has not finished an epoch; "
            "resume it with `hashlearn train ... --resume`."
        )
    network = build_network(config["network"])
    load_network_state(network, load_tensors(run_dir / "model.safetensors"))
    network.to(target)
    h2q = None
    quantization = config["train"]["quantization"]
    if quantization in ("h2q", "itq"):
        from hashlearn.deep.two_stage import ROTATION_FILES, rotation_class

        path = run_dir / ROTATION_FILES[quantization]
        if not path.is_file():
            raise HashlearnFileError(
                f"{run_dir} is a two-stage {quantization} run but {path.name} is missing: "
                "training did not finish; resume it with --resume."
            )
        h2q = rotation_class(quantization).load(path)
    return DeepHasher(network, config, h2q)


def evaluate_run(
    run_dir: str | os.PathLike,
    topk: int | str | None = "protocol",
    *,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    **metric_kwargs: Any,
) -> dict:
    """Encode the run's dataset query and database splits and evaluate retrieval.

    Uses the dataset name, protocol and split seed recorded in ``config.json``, so the numbers
    are on the same split as training (the query split was never used for model selection).

    Args:
        run_dir: a run directory written by ``hashlearn train``.
        topk: mAP cut-off: ``"protocol"`` (the dataset protocol's, e.g. 5000 for CIFAR-10
            ``h2q``; see :meth:`hashlearn.data.Dataset.resolve_topk`), an int, or ``None`` /
            ``"all"`` for mAP@all.
        data_dir: folder holding the dataset files (passed to ``load_dataset``; None = the
            default search path).
        device: where to encode (see :func:`load_run`).
        **metric_kwargs: further options of :func:`hashlearn.metrics.evaluate_retrieval`
            (``k``, ``radius``, ``ties``), left at its defaults when not given.
    """
    from hashlearn.data import load_dataset
    from hashlearn.metrics import evaluate_retrieval

    allowed = {"k", "radius", "ties"}
    unknown = sorted(set(metric_kwargs) - allowed)
    if unknown:
        raise HashlearnInputError(
            f"unknown evaluation option(s) {unknown}; evaluate_run accepts {sorted(allowed)}."
        )
    hasher = load_run(run_dir, device=device)
    data = hasher.config.get("dataset")
    if not data or not data.get("name"):
        raise HashlearnInputError(
            f"{run_dir} was trained on in-memory arrays, not a named dataset; encode your "
            "query/database with load_run(...).encode and call hashlearn.metrics yourself."
        )
    kwargs: dict[str, Any] = {"split_seed": data["split_seed"]}
    if data.get("protocol"):
        kwargs["protocol"] = data["protocol"]
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    dataset = load_dataset(data["name"], **kwargs)
    topk = dataset.resolve_topk(topk)
    field = "X" if hasher.input_kind == "features" else "images"
    query = getattr(dataset.query, field)
    database = getattr(dataset.database, field)
    result = evaluate_retrieval(
        hasher.encode(query),
        hasher.encode(database),
        dataset.query.y,
        dataset.database.y,
        topk=topk,
        **metric_kwargs,
    )
    result = dict(result)
    result.update(
        {
            "dataset": data["name"],
            "split_seed": data["split_seed"],
            "n_bits": hasher.n_bits,
            "topk": topk,
        }
    )
    return result
