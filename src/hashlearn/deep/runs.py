"""Run directories: configuration, resumable checkpoints, results and divergence reports.

Layout of a run directory::

    config.json                 what was trained: TrainConfig, network spec, input spec, dataset
    model.safetensors           weights of the best epoch so far (by validation mAP)
    h2q.npz / itq.npz           two-stage rotation (only for quantization "h2q" / "itq")
    result.json                 final status, history, best epoch, H²Q fit details
    checkpoints/latest.json     name of the newest complete checkpoint folder
    checkpoints/epoch-NNNN/     model.safetensors, optimizer.safetensors, state.json
    features/                   cached backbone features (only with a frozen backbone)

Nothing is pickled: tensors go to safetensors, everything else to JSON. Every file is written
to a temporary name and renamed; a checkpoint folder is completed under a temporary name and
renamed, and only then does ``latest.json`` point at it, so an interruption at any moment
leaves the previous good checkpoint in place.

:class:`RunDirectory` is the one writer of these files during training; :func:`read_json`,
:func:`load_tensors` and :func:`load_network_state` read them back
(:func:`hashlearn.deep.hasher.load_run`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

import hashlearn.deep.distributed as dd
from hashlearn._io import HashlearnFileError, atomic_path, write_json_atomic
from hashlearn._validation import HashlearnInputError

CHECKPOINTS = "checkpoints"
KEEP_CHECKPOINTS = 2


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` to a safetensors file atomically (copies, contiguous, on CPU)."""
    payload = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(payload, str(tmp))


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file, or a clear error when it is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise HashlearnFileError(f"missing file {path}; the run directory is incomplete.")
    try:
        return load_file(str(path))
    except Exception as exc:
        raise HashlearnFileError(f"{path} is damaged ({type(exc).__name__}: {exc}).") from None


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file of a run directory, or a clear error when it is missing or damaged."""
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
    """Load saved weights (from :func:`network_state`) into ``network`` and ``loss``."""
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


# -- training state: progress, weights, optimizer, schedule, random numbers -----------------
def new_progress() -> dict:
    """The trainer's progress before the first epoch (checkpointed as ``state.json["state"]``)."""
    return {
        "epoch": 0,
        "best_map": -1.0,
        "best_epoch": 0,
        "bad_epochs": 0,
        "history": [],
        "status": "running",
    }


def record_epoch(
    progress: dict,
    epoch: int,
    totals: list[float],
    val_map: float,
    code_statistics: dict,
    seconds: float,
    lr: float,
) -> None:
    """Add epoch ``epoch`` to ``progress``: its mean losses ``totals`` (total, similarity,
    quantization), validation mAP, the validation codes' statistics
    (:func:`hashlearn.codes.code_statistics`), seconds of training and learning rate."""
    loss, similarity, quantization = totals
    progress["history"].append(
        {
            "epoch": epoch,
            "loss": loss,
            "similarity": similarity,
            "quantization": quantization,
            "val_map": val_map,
            **code_statistics,
            "seconds": seconds,
            "lr": lr,
        }
    )
    progress["epoch"] = epoch


def capture_training_state(
    weights: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """``(weights with random-number states, optimizer tensors, JSON meta)`` of a checkpoint."""
    opt_tensors, opt_meta = split_state(optimizer.state_dict())
    weights = dict(weights)
    weights["__rng__.generator"] = generator.get_state()
    weights["__rng__.torch"] = torch.get_rng_state()
    if device.type == "cuda":  # e.g. dropout in a fine-tuned pretrained network
        weights["__rng__.cuda"] = torch.cuda.get_rng_state(device)
    return weights, opt_tensors, {"optimizer": opt_meta, "scheduler": scheduler.state_dict()}


def restore_training_state(
    checkpoint: tuple[dict, dict, dict],
    objective: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
    device: torch.device,
) -> dict:
    """Inverse of :func:`capture_training_state` for a checkpoint read by
    :func:`read_checkpoint` (``objective`` holds the ``network`` and the ``loss``); returns the
    trainer's saved progress (``meta["state"]``)."""
    weights, opt_tensors, saved = checkpoint
    load_network_state(objective.network, weights, objective.loss)
    optimizer.load_state_dict(join_state(opt_tensors, saved["optimizer"]))
    scheduler.load_state_dict(saved["scheduler"])
    generator.set_state(weights["__rng__.generator"])
    torch.set_rng_state(weights["__rng__.torch"])
    if device.type == "cuda" and "__rng__.cuda" in weights:
        torch.cuda.set_rng_state(weights["__rng__.cuda"], device)
    return saved["state"]


# -- the run directory -----------------------------------------------------------------------
class RunDirectory:
    """The files of one training run (see the module docstring).

    With ``path=None`` nothing is read or written. Only the main process of a distributed run
    writes; :meth:`open` synchronises the others.

    Args:
        path: the run directory (created by :meth:`open`), or None.
        ctx: the process context (:func:`hashlearn.deep.distributed.current`).
    """

    #: Training settings that may change when a run is resumed.
    RESUMABLE_CHANGES = ("epochs", "device")

    def __init__(self, path: str | os.PathLike | None, ctx: dd.Context) -> None:
        self.path = None if path is None else Path(path)
        self.ctx = ctx
        self.writes = self.path is not None and ctx.is_main

    def open(self, config: dict, resume: bool) -> tuple[dict, dict, dict] | None:
        """Start a new run (writing ``config.json``), or check that ``config`` may continue the
        saved one and return its newest checkpoint (see :func:`read_checkpoint`).

        Args:
            config: the run's full configuration (``config["train"]`` is the TrainConfig).
            resume: continue a run that the directory already holds.
        """
        if self.path is None:
            return None
        checkpoint = read_checkpoint(self.path)
        if checkpoint is not None and not resume:
            raise HashlearnFileError(
                f"{self.path} already holds a training run; pass `resume=True` to continue "
                "it, or choose a new `run_dir`."
            )
        if checkpoint is None:
            if self.writes:
                self.path.mkdir(parents=True, exist_ok=True)
                write_json_atomic(self.path / "config.json", config)
            dd.barrier(self.ctx)
            return None
        saved = read_json(self.path / "config.json")
        mine, free = config["train"], self.RESUMABLE_CHANGES
        diff = [k for k in mine if k not in free and saved["train"].get(k) != mine[k]]
        if diff:
            raise HashlearnInputError(
                f"cannot resume {self.path}: it was started with different settings "
                f"({', '.join(f'`{k}`' for k in diff)}); use the same settings or a new "
                "`run_dir`."
            )
        changed = saved.get("device") != config["device"] or any(
            saved["train"].get(k) != mine[k] for k in free
        )
        if self.writes and changed:
            write_json_atomic(self.path / "config.json", config)
        return checkpoint

    def feature_cache(self, name: str) -> Path | None:
        """Where cached backbone features of split ``name`` go (None: no run directory)."""
        return None if self.path is None else self.path / "features" / f"{name}.npz"

    def save_best(self, weights: dict[str, torch.Tensor]) -> None:
        """Store the weights of the best epoch so far (``model.safetensors``)."""
        if self.writes:
            save_tensors(self.path / "model.safetensors", weights)

    def load_best(self) -> dict[str, torch.Tensor] | None:
        """The stored best weights, or None when there are none yet."""
        if self.path is None or not (self.path / "model.safetensors").is_file():
            return None
        return load_tensors(self.path / "model.safetensors")

    def save_checkpoint(
        self,
        epoch: int,
        training_state: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict],
        progress: dict,
    ) -> None:
        """Write checkpoint ``epoch`` from :func:`capture_training_state` and the trainer's
        ``progress`` (epoch, history, early-stopping state)."""
        if self.writes:
            weights, opt_tensors, meta = training_state
            write_checkpoint(self.path, epoch, weights, opt_tensors, {"state": progress, **meta})

    def save_rotation(self, quantizer: Any, filename: str) -> None:
        """Store the fitted rotation of a two-stage run (``h2q.npz`` / ``itq.npz``)."""
        if self.writes:
            quantizer.save(self.path / filename)

    def write_result(self, result: dict) -> None:
        """Write ``result.json`` (final status, history, best epoch)."""
        if self.writes:
            write_json_atomic(self.path / "result.json", result)

    def report_divergence(self, progress: dict, epoch: int, batch: int) -> str:
        """Record a diverged run in ``result.json``; returns where the last good state is."""
        self.write_result(
            {
                "status": "diverged",
                "epoch": progress["epoch"],
                "failed_epoch": epoch,
                "failed_batch": batch,
                "history": progress["history"],
            }
        )
        if self.path is None:
            return "no run directory was given"
        return f"the last good checkpoint (epoch {progress['epoch']}) is kept in {self.path}"
