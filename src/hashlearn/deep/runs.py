"""Run directories: configuration, resumable checkpoints, results and divergence reports.

Layout of a run directory::

    config.json                 what was trained: TrainConfig, network spec, input spec, dataset
    model.safetensors           weights of the best epoch so far (by validation mAP)
    h2q.npz / itq.npz           two-stage rotation (only for quantization "h2q" / "itq")
    result.json                 final status, history, best epoch, H²Q fit details
    checkpoints/latest.json     name of the newest complete checkpoint folder
    checkpoints/epoch-NNNN/     model.safetensors, optimizer.safetensors, state.json
    features/                   cached backbone features (only with a frozen backbone)
    .lock                       held (``fcntl.flock``) by the process training in the folder

Nothing is pickled: tensors go to safetensors, everything else to JSON. Every file is written
to a temporary name and renamed. Tensor files carry the SHA-256 of each tensor, checkpoints the
SHA-256 of their files, and ``model.safetensors`` the network and input specs it was trained
with, so damaged or edited files are errors naming the file
(:mod:`hashlearn.deep.checkpoints`, which also describes the crash-safe checkpoint rotation).

Resuming (``resume=True``) continues from the newest *intact* checkpoint: a damaged newer one
is skipped with a warning (and removed once a new checkpoint is in place), a missing
``latest.json`` does not matter, and when no checkpoint is intact, or the folder holds no run,
the trainer refuses rather than start afresh. A damaged ``model.safetensors`` (the best
weights so far) cannot be rebuilt from the checkpoints, so resuming refuses then too.

:class:`RunDirectory` is the one writer of these files during training and holds the folder's
lock while it trains: a second trainer on the same folder gets an error naming the folder and
the first trainer's pid. :func:`load_network_state` and the readers of
:mod:`hashlearn.deep.checkpoints` read the files back (:func:`hashlearn.deep.hasher.load_run`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

import hashlearn.deep.distributed as dd
from hashlearn._io import HashlearnFileError, _json_default, file_lock, write_json_atomic
from hashlearn._validation import HashlearnInputError
from hashlearn.deep.checkpoints import (
    checkpoint_folders,
    read_checkpoint,
    read_json,
    read_tensor_file,
    save_tensors,
    write_checkpoint,
)
from hashlearn.deep.config import TrainConfig

log = logging.getLogger("hashlearn")

#: Header entries of ``model.safetensors`` recording the specs its weights were trained with.
SPEC_KEYS = ("network", "input")


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


# -- weights ---------------------------------------------------------------------------------
def network_state(network: torch.nn.Module, loss: torch.nn.Module | None) -> dict:
    """Weights to save: the network (minus a frozen pretrained backbone, which is reloaded from
    its own weights file) and the loss's parameters/buffers under ``loss.``.

    The tensors are the live ones (they change as training goes on); use :func:`cpu_copy` to
    keep a snapshot."""
    skip = network.frozen and getattr(network.backbone, "reloadable", False)
    state = {
        k: v for k, v in network.state_dict().items() if not (skip and k.startswith("backbone."))
    }
    if loss is not None:
        state.update({f"loss.{k}": v for k, v in loss.state_dict().items()})
    return state


def cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A snapshot of ``state`` on the CPU (copied even when it already is there)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def load_network_state(
    network: torch.nn.Module, state: dict, loss: Any = None, source: Any = "the saved weights"
) -> None:
    """Load saved weights (from :func:`network_state`) into ``network`` and ``loss``;
    ``source`` (the file) is named in the error when they do not fit."""
    net_state = {k: v for k, v in state.items() if not k.startswith(("loss.", "__rng__."))}
    try:
        missing, unexpected = network.load_state_dict(net_state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape, e.g. after n_bits was edited
        detail = " ".join(str(exc).split())[:300]
        raise HashlearnFileError(
            f"{source} does not fit the network its config.json describes ({detail}); the "
            "config or the weights were edited, or they belong to different runs."
        ) from None
    missing = [k for k in missing if not (network.frozen and k.startswith("backbone."))]
    if missing or unexpected:
        raise HashlearnFileError(
            f"{source} does not match the network (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); the run directory belongs to another configuration."
        )
    if loss is not None:
        loss_state = {k[5:]: v for k, v in state.items() if k.startswith("loss.")}
        if loss_state:
            loss.load_state_dict(loss_state)


def _as_json(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(obj, default=_json_default))


def check_specs(path: Path, meta: dict[str, str], config: dict) -> None:
    """Check that ``config.json`` still describes the network and input that the weights file
    ``path`` (header ``meta``) was trained with, and that its ``n_bits`` agree."""
    edited = [k for k in SPEC_KEYS if k in meta and json.loads(meta[k]) != _as_json(config.get(k))]
    if config.get("train", {}).get("n_bits") != config.get("network", {}).get("n_bits"):
        edited.append("train.n_bits")
    if edited:
        raise HashlearnFileError(
            f"{path.parent / 'config.json'} does not match {path}: its "
            f"{', '.join(edited)} setting(s) were edited after training; restore them."
        )


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
    load_network_state(objective.network, weights, objective.loss, "the checkpoint's weights")
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
    RESUMABLE_CHANGES = ("epochs", "device", "num_workers")

    def __init__(self, path: str | os.PathLike | None, ctx: dd.Context) -> None:
        self.path = None if path is None else Path(path)
        self.ctx = ctx
        self.writes = self.path is not None and ctx.is_main
        self.live: str | None = None  # the newest checkpoint folder, kept by the next rotation
        self.specs: dict[str, str] = {}  # header of model.safetensors

    @contextmanager
    def locked(self, resume: bool) -> Iterator[None]:
        """Create the folder (unless resuming) and hold its lock for the ``with`` block; a
        second process gets an error naming the folder and the holder's pid."""
        if not self.writes:
            yield
            return
        if self.path.exists() and not self.path.is_dir():
            raise HashlearnFileError(
                f"cannot use {self.path} as a run directory: File exists and is not a folder; "
                "choose a new `run_dir`."
            )
        if resume and not self.has_run():  # checked again under the lock by open()
            raise self._nothing_to_resume()
        self.path.mkdir(parents=True, exist_ok=True)
        with file_lock(self.path):
            yield

    def has_run(self) -> bool:
        """Whether the folder holds a run (a ``config.json`` or a checkpoint folder)."""
        return (self.path / "config.json").is_file() or bool(checkpoint_folders(self.path))

    def _nothing_to_resume(self) -> HashlearnFileError:
        return HashlearnFileError(
            f"{self.path} holds no training run to resume (no config.json, no checkpoints); "
            "check the `run_dir`, or drop `resume=True` to start a new run there."
        )

    def open(self, config: dict, resume: bool) -> tuple[dict, dict, dict] | None:
        """Start a new run (writing ``config.json``), or check that ``config`` may continue the
        saved one and return its newest intact checkpoint (see
        :func:`hashlearn.deep.checkpoints.read_checkpoint`; None when the run stopped before
        its first checkpoint, which resumes from the start).

        Args:
            config: the run's full configuration (``config["train"]`` is the TrainConfig).
            resume: continue a run that the directory already holds.
        """
        if self.path is None:
            return None
        self.specs = {k: json.dumps(_as_json(config[k]), sort_keys=True) for k in SPEC_KEYS}
        has_run = self.has_run()
        if has_run and not resume:
            raise HashlearnFileError(
                f"{self.path} already holds a training run; pass `resume=True` to continue "
                "it, or choose a new `run_dir`."
            )
        if not has_run and resume:
            raise self._nothing_to_resume()
        found = read_checkpoint(self.path) if resume else None
        if found is None:
            if resume:
                self._check_settings(config)
                if self.ctx.is_main:
                    log.warning("%s has no checkpoint yet: its run restarts at epoch 1", self.path)
            dd.barrier(self.ctx)  # every process has looked at the folder before it changes
            if self.writes:
                write_json_atomic(self.path / "config.json", config)
            dd.barrier(self.ctx)
            return None
        if found.skipped and self.ctx.is_main:
            log.warning(
                "resuming %s from %s, the newest intact checkpoint; skipped: %s",
                self.path,
                found.folder,
                "; ".join(found.skipped),
            )
        self.live = found.folder
        self._check_settings(config)
        return found.checkpoint

    def _check_settings(self, config: dict) -> None:
        """Refuse to resume with settings other than the saved run's; record allowed changes."""
        saved = read_json(self.path / "config.json")
        mine, free = config["train"], self.RESUMABLE_CHANGES
        # A setting newer than the saved run had its default there.
        fields = TrainConfig.__dataclass_fields__
        was = {k: saved["train"].get(k, getattr(fields[k], "default", None)) for k in mine}
        diff = [k for k in mine if k not in free and was[k] != mine[k]]
        if diff:
            raise HashlearnInputError(
                f"cannot resume {self.path}: it was started with different settings "
                f"({', '.join(f'`{k}`' for k in diff)}); use the same settings or a new "
                "`run_dir`."
            )
        changed = saved.get("device") != config["device"] or any(was[k] != mine[k] for k in free)
        if self.writes and changed:
            write_json_atomic(self.path / "config.json", config)

    def feature_cache(self, name: str) -> Path | None:
        """Where cached backbone features of split ``name`` go (None: no run directory)."""
        return None if self.path is None else self.path / "features" / f"{name}.npz"

    def save_best(self, weights: dict[str, torch.Tensor]) -> None:
        """Store the weights of the best epoch so far (``model.safetensors``)."""
        if self.writes:
            save_tensors(self.path / "model.safetensors", weights, self.specs)

    def load_best(self, config: dict) -> dict[str, torch.Tensor] | None:
        """The stored best weights (verified against their checksums and ``config``), or None
        when there are none yet."""
        path = None if self.path is None else self.path / "model.safetensors"
        if path is None or not path.is_file():
            return None
        try:
            weights, meta = read_tensor_file(path)
        except HashlearnFileError as exc:
            raise HashlearnFileError(
                f"{exc} The best weights so far cannot be rebuilt from the checkpoints, so the "
                "run cannot be resumed; start it again in a new `run_dir`."
            ) from None
        check_specs(path, meta, config)
        return weights

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
            state = {"state": progress, **meta}
            self.live = write_checkpoint(self.path, epoch, weights, opt_tensors, state, self.live)

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
