"""Seeded, resumable training of a deep hashing network with any loss × quantization strategy.

The objective of a batch is ``loss(activate(z), labels, indices) + quantization(z or a)``
(Doan et al., CVPR 2022, Eq. 1: a similarity-preserving loss plus a quantization term), where
``z`` are the network's continuous codes. With the two-stage strategy ``h2q`` (Schwengber et
al., arXiv 2311.04207) the quantization term is zero while training; afterwards the H²Q
rotation is fitted on the training embeddings and applied before taking signs.

Model selection uses a validation split only — the protocol's ``val`` split, or, when it has
none, a seeded hold-out of the training split recorded in ``config.json`` — never the query
split (REFERENCE.md, "Evaluation conventions"). Everything is seeded: the same configuration
and seed give bit-identical weights on the same machine, and an interrupted run resumed from
its last checkpoint continues exactly as if it had not stopped (the batch order of epoch ``e``
is drawn from ``seed`` and ``e`` alone; random-number states are checkpointed).

Training runs on ``TrainConfig.device``: the network, the loss module (with its parameters and
buffers), batches, labels and indices live there, while every random draw (weights, batch
order, hold-out, HSWD/SWD targets) comes from CPU generators, so the same seed draws the same
numbers on every device. Checkpoints hold CPU copies, so a run resumes on any device.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hashlearn._io import HashlearnFileError, write_json_atomic
from hashlearn._validation import HashlearnInputError
from hashlearn.codes import code_statistics, pack
from hashlearn.deep import distributed as dd
from hashlearn.deep import runs, two_stage
from hashlearn.deep.config import (
    TrainConfig,
    TrainingDivergedError,
    input_kind,
    input_spec,
    make_optimizer,
    make_scheduler,
    resolve_device,
    to_multihot,
)
from hashlearn.deep.features import extract_features, run_model, to_batch
from hashlearn.deep.model import build_network
from hashlearn.deep.objective import Objective, deterministic, keep_torch_threads
from hashlearn.deep.quantization import TWO_STAGE

log = logging.getLogger("hashlearn")

__all__ = ["Objective", "Trainer", "TrainConfig", "TrainingDivergedError", "train_on_dataset"]


class Trainer:
    """Train one :class:`TrainConfig` on in-memory arrays; see :meth:`fit`.

    Args:
        config: the training configuration.
        run_dir: run directory for config, checkpoints and the model (None: nothing written).
        resume: continue the run in ``run_dir`` from its last checkpoint.
        progress: tqdm progress bars on stderr (epoch loss and validation mAP).
        extra_config: more JSON to store in ``config.json`` (e.g. the dataset's name and split).
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path | None = None,
        *,
        resume: bool = False,
        progress: bool = True,
        extra_config: dict | None = None,
    ):
        self.config = config.validate()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.resume = resume
        self.progress = progress
        self.extra_config = extra_config or {}
        self.ctx = dd.current()
        self.device = dd.process_device(resolve_device(config.device), self.ctx)

    # -- public ------------------------------------------------------------------------------
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        *,
        n_classes: int | None = None,
    ) -> runs.DeepHasher:
        """Train on ``(X, y)`` (images or features, by backbone) and return the hasher.

        ``y`` are 1-D class ids or 2-D multi-hot labels; ``X_val``/``y_val`` is the validation
        split (None: hold out ``val_fraction`` of the training items, seeded).
        """
        cfg = self.config
        X, y = np.asarray(X), np.asarray(y)
        if len(X) != len(y):
            raise HashlearnInputError(f"X has {len(X)} items but y has {len(y)} labels.")
        if y_val is not None and np.asarray(y_val).ndim != y.ndim:
            raise HashlearnInputError(
                "training and validation labels have different formats "
                f"({y.ndim}-D vs {np.asarray(y_val).ndim}-D); use class ids or multi-hot for both."
            )
        if n_classes is None:
            n_classes = int(y.shape[1]) if y.ndim == 2 else int(y.max()) + 1
        y_val = None if y_val is None else np.asarray(y_val)
        X, y, X_val, y_val, holdout = self._split_validation(X, y, X_val, y_val)
        self.labels = to_multihot(y, n_classes).to(self.device)
        to_multihot(y_val, n_classes, "val labels")  # validates the format
        spec = input_spec(cfg.backbone, X)
        with deterministic(self.device):
            torch.manual_seed(cfg.seed)
            self._build(spec, n_classes, len(X))
            self.full_config = {
                "train": dataclasses.asdict(cfg),
                "device": str(self.device),
                "network": self.net_spec,
                "input": spec,
                "n_classes": n_classes,
                "n_train": len(X),
                "holdout": holdout,
                **self.extra_config,
            }
            return self._train(X, y, X_val, y_val)

    # -- set-up ------------------------------------------------------------------------------
    def _split_validation(self, X, y, X_val, y_val):
        if X_val is not None:
            if y_val is None or len(X_val) != len(y_val):
                raise HashlearnInputError("val inputs and val labels must have the same length.")
            if len(X_val) == 0:
                raise HashlearnInputError("the validation split is empty.")
            return X, y, np.asarray(X_val), y_val, None
        n_val = max(1, int(round(len(X) * self.config.val_fraction)))
        if len(X) - n_val < 2:
            raise HashlearnInputError(f"need at least {n_val + 2} training items, got {len(X)}.")
        order = np.random.default_rng(self.config.seed).permutation(len(X))
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        holdout = {
            "seed": self.config.seed,
            "fraction": self.config.val_fraction,
            "n_val": int(n_val),
            "indices": val_idx.tolist(),
        }
        return X[train_idx], y[train_idx], X[val_idx], y[val_idx], holdout

    def _build(self, spec: dict, n_classes: int, n_train: int) -> None:
        from hashlearn.deep.losses import get_loss
        from hashlearn.deep.quantization import get_quantization

        cfg = self.config
        self.loss = get_loss(
            cfg.loss,
            cfg.n_bits,
            n_classes,
            n_train=n_train,
            random_state=cfg.seed,
            **cfg.loss_kwargs,
        )
        set_labels = getattr(self.loss, "set_training_labels", None)
        if set_labels is not None:
            set_labels(self.labels.cpu())
        hidden = cfg.hidden if cfg.hidden is not None else (256 if cfg.backbone == "mlp" else 0)
        activation = self.loss.activation
        if cfg.quantization in TWO_STAGE and activation != "sign_ste":
            activation = cfg.stage1_activation  # stage one of H²Q: no tanh by default
        self.net_spec = {
            "backbone": cfg.backbone,
            "n_bits": cfg.n_bits,
            "activation": activation,
            "hidden": hidden,
            "frozen": cfg.freeze_backbone,
            "in_channels": spec.get("in_channels", 1),
            "in_features": spec.get("in_features"),
            "cnn_width": cfg.cnn_width,
            "cnn_features": cfg.cnn_features,
            "weights": cfg.weights,
        }
        self.network = build_network(self.net_spec)
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)
        self.quant = get_quantization(
            cfg.quantization,
            weight=cfg.quantization_weight,
            loss=self.loss,
            n_projections=cfg.n_projections,
            generator=self.generator,
        )
        if self.quant.two_stage and not self.loss.rotation_invariant and self.ctx.is_main:
            log.warning(
                "two-stage %s assumes a rotation-invariant similarity loss; %r optimises the "
                "codes' signs or fixed per-bit targets, so the rotation can lower its mAP "
                "(compare with --quantization none).",
                cfg.quantization,
                cfg.loss,
            )
        # Built (and initialised from the seed) on the CPU, then moved: same weights everywhere.
        self.objective = Objective(self.network, self.loss, self.quant, cfg.freeze_backbone)
        self.objective.to(self.device)
        params = [p for p in self.objective.parameters() if p.requires_grad]
        if cfg.head_lr_multiplier != 1.0:  # new layers: the hash head and the loss's own
            new = {id(p) for m in (self.network.head, self.loss) for p in m.parameters()}
            groups = [
                {"params": [p for p in params if id(p) not in new]},
                {
                    "params": [p for p in params if id(p) in new],
                    "lr": cfg.lr * cfg.head_lr_multiplier,
                },
            ]
            params = [g for g in groups if g["params"]]
        self.optimizer = make_optimizer(cfg, params)
        self.scheduler = make_scheduler(cfg, self.optimizer)
        self.input = spec

    # -- main loop ---------------------------------------------------------------------------
    def _train(self, X, y, X_val, y_val) -> runs.DeepHasher:
        cfg, ctx = self.config, self.ctx
        kind, mean, std = self.input["kind"], self.input["mean"], self.input["std"]
        if cfg.freeze_backbone:  # run the frozen backbone once, train the head on its output
            cache = None if self.run_dir is None else self.run_dir / "features"
            X, X_val = (
                extract_features(
                    self.network.backbone,
                    arr,
                    mean=mean,
                    std=std,
                    progress=self.progress and ctx.is_main,
                    cache=None if cache is None else cache / f"{name}.npz",
                )
                for name, arr in (("train", X), ("val", X_val))
            )
            kind, mean, std = "features", 0.0, 1.0
        self.batch_input = (kind, mean, std)
        state = self._prepare_run_dir()
        model = dd.wrap(self.objective, ctx, self.device)
        rng = np.random.default_rng(cfg.seed + 2)  # fixed validation subsets
        q_idx = np.sort(rng.permutation(len(X_val))[: cfg.val_queries])
        db_idx = np.sort(rng.permutation(len(X))[: cfg.val_database])
        show = self.progress and ctx.is_main
        epochs_bar = tqdm(total=cfg.epochs, initial=state["epoch"], desc="epochs", disable=not show)
        while state["epoch"] < cfg.epochs and state["status"] == "running":
            epoch = state["epoch"] + 1
            start, lr = time.perf_counter(), self.optimizer.param_groups[0]["lr"]
            totals = self._run_epoch(model, X, epoch, state, show)
            seconds = time.perf_counter() - start
            val_map = self._validation_map(X_val[q_idx], y_val[q_idx], X[db_idx], y[db_idx])
            state["history"].append(
                {
                    "epoch": epoch,
                    "loss": totals[0],
                    "similarity": totals[1],
                    "quantization": totals[2],
                    "val_map": val_map,
                    **self.val_code_statistics,
                    "seconds": seconds,
                    "lr": lr,
                }
            )
            state["epoch"] = epoch
            self._early_stopping(state, val_map)
            self._checkpoint(state)
            epochs_bar.update(1)
            epochs_bar.set_postfix(loss=f"{totals[0]:.4f}", val_map=f"{val_map:.4f}")
        epochs_bar.close()
        if state["status"] == "running":
            state["status"] = "finished"
        self.history, self.status = state["history"], state["status"]
        # The last checkpoint keeps the last epoch's weights (a longer --epochs resumes from
        # there, with its optimizer state); the returned model has the best epoch's.
        last = runs.cpu_copy(runs.network_state(self.network, self.loss))
        runs.load_network_state(self.network, self._best, self.loss)
        h2q = self._fit_rotation(X, state) if getattr(self.quant, "two_stage", False) else None
        self._checkpoint(state, last)
        if self.run_dir is not None and ctx.is_main:
            keys = ("status", "epoch", "best_epoch", "best_map", "history", "h2q")
            write_json_atomic(self.run_dir / "result.json", {k: state.get(k) for k in keys})
        dd.barrier(ctx)
        return runs.DeepHasher(self.network, self.full_config, h2q)

    def _run_epoch(self, model, X, epoch: int, state: dict, show: bool) -> list[float]:
        """One pass over this rank's shard of the epoch's seeded permutation."""
        cfg, ctx, device = self.config, self.ctx, self.device
        kind, mean, std = self.batch_input
        generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        items = getattr(self.loss, "epoch_items", lambda epoch: None)(epoch)  # ADSH's subsets
        if items is None:
            order = torch.randperm(len(X), generator=generator)
        else:
            order = items[torch.randperm(len(items), generator=generator)]
        order = dd.shard(order, ctx)  # on the CPU
        hook = getattr(self.loss, "on_epoch_end", None)
        wants = hook is not None and self.loss.needs_epoch_embeddings
        buffer = torch.zeros(len(X), cfg.n_bits, device=device) if wants else None
        set_iteration = getattr(self.quant, "set_iteration", None)  # HashNet's continuation
        seen = torch.zeros(len(X), device=device)
        totals, n_batches = torch.zeros(3, device=device), 0
        self.objective.train()
        # Incomplete last batches are dropped (the permutation changes every epoch, so every
        # item is still seen): a tiny batch would give one noisy step the weight of a full one.
        n_full = max(len(order) // cfg.batch_size, 1)
        bar = tqdm(range(n_full), desc=f"epoch {epoch}", leave=False, disable=not show)
        for b in bar:
            cpu_idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            if len(cpu_idx) < 2:
                raise HashlearnInputError("need at least 2 training items per process.")
            idx = cpu_idx.to(device)
            if set_iteration is not None:
                set_iteration((epoch - 1) * n_full + b + 1)
            value, sim, quant, z = model(
                to_batch(X[cpu_idx.numpy()], kind, mean, std, device), self.labels[idx], idx
            )
            parts = dd.mean_over_ranks(torch.stack([value.detach(), sim, quant]).float(), ctx)
            mean_value = parts[0]
            if not torch.isfinite(mean_value):
                self._diverged(state, epoch, n_batches)
            self.optimizer.zero_grad(set_to_none=True)
            value.backward()
            self.optimizer.step()
            totals += parts
            n_batches += 1
            if buffer is not None:
                buffer[idx], seen[idx] = z, 1.0
            bar.set_postfix(loss=f"{mean_value.item():.4f}")
        bar.close()
        if not all(bool(torch.isfinite(p).all()) for p in self.objective.parameters()):
            self._diverged(state, epoch, n_batches)  # e.g. an overflowing step of finite loss
        if hook is not None:
            hook(self._all_embeddings(buffer, seen, X) if wants else None, self.labels)
        self.scheduler.step()
        return (totals / max(n_batches, 1)).tolist()

    def _all_embeddings(self, buffer: torch.Tensor, seen: torch.Tensor, X) -> torch.Tensor:
        """Every training item's embedding of this epoch, in training order, for stateful
        losses: rows seen in a batch (on any rank) as computed there; the few items left out by
        full-batch sharding are embedded now."""
        buffer, seen = dd.sum_over_ranks(buffer, self.ctx), dd.sum_over_ranks(seen, self.ctx)
        missing = (seen == 0).nonzero().flatten().cpu().numpy()
        if len(missing):
            kind, mean, std = self.batch_input
            z = run_model(self.objective.codes, X[missing], kind, mean=mean, std=std)
            buffer[torch.from_numpy(missing).to(buffer.device)] = torch.from_numpy(z).to(buffer)
        return buffer

    def _validation_map(self, Xq, yq, Xdb, ydb) -> float:
        """mAP@all of sign codes: validation items against training items (never the query).

        Also keeps the validation codes' quantization error and per-bit entropy
        (:func:`hashlearn.codes.code_statistics`) for the epoch's history."""
        from hashlearn.metrics import mean_average_precision

        kind, mean, std = self.batch_input
        z = run_model(self.objective.codes, Xq, kind, mean=mean, std=std)
        self.val_code_statistics = code_statistics(z)
        q = pack(z)
        db = pack(run_model(self.objective.codes, Xdb, kind, mean=mean, std=std))
        with keep_torch_threads():
            return float(mean_average_precision(q, db, yq, ydb))

    def _early_stopping(self, state: dict, val_map: float) -> None:
        cfg = self.config
        if val_map > state["best_map"] + cfg.min_delta:
            state.update(best_map=val_map, best_epoch=state["epoch"], bad_epochs=0)
            self._best = runs.cpu_copy(runs.network_state(self.network, self.loss))
            if self.run_dir is not None and self.ctx.is_main:
                runs.save_tensors(self.run_dir / "model.safetensors", self._best)
        else:
            state["bad_epochs"] += 1
            if cfg.patience and state["bad_epochs"] >= cfg.patience:
                state["status"] = "early_stopped"

    # -- run directory -----------------------------------------------------------------------
    def _prepare_run_dir(self) -> dict:
        self._best = runs.cpu_copy(runs.network_state(self.network, self.loss))
        state = {
            "epoch": 0,
            "best_map": -1.0,
            "best_epoch": 0,
            "bad_epochs": 0,
            "history": [],
            "status": "running",
        }
        if self.run_dir is None:
            return state
        checkpoint = runs.read_checkpoint(self.run_dir)
        if checkpoint is not None and not self.resume:
            raise HashlearnFileError(
                f"{self.run_dir} already holds a training run; pass --resume (resume=True) "
                "to continue it, or choose a new output directory."
            )
        if checkpoint is None:
            if self.ctx.is_main:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                write_json_atomic(self.run_dir / "config.json", self.full_config)
            dd.barrier(self.ctx)
            return state
        saved_config = runs.read_json(self.run_dir / "config.json")
        mine = self.full_config["train"]
        free = ("epochs", "device")  # may change on resume
        diff = [k for k in mine if k not in free and saved_config["train"].get(k) != mine[k]]
        if diff:
            raise HashlearnInputError(
                f"cannot resume {self.run_dir}: it was started with different settings "
                f"({', '.join(diff)}); use the same options or a new --output."
            )
        weights, opt_tensors, saved = checkpoint
        runs.load_network_state(self.network, weights, self.loss)
        self.optimizer.load_state_dict(runs.join_state(opt_tensors, saved["optimizer"]))
        self.scheduler.load_state_dict(saved["scheduler"])
        self.generator.set_state(weights["__rng__.generator"])
        torch.set_rng_state(weights["__rng__.torch"])
        if self.device.type == "cuda" and "__rng__.cuda" in weights:
            torch.cuda.set_rng_state(weights["__rng__.cuda"], self.device)
        if (self.run_dir / "model.safetensors").is_file():
            self._best = runs.load_tensors(self.run_dir / "model.safetensors")
        state = saved["state"]
        if state["epoch"] < self.config.epochs and state["status"] != "early_stopped":
            state["status"] = "running"
        changed = saved_config.get("device") != self.full_config["device"] or any(
            saved_config["train"].get(k) != mine[k] for k in free
        )
        if self.ctx.is_main and changed:
            write_json_atomic(self.run_dir / "config.json", self.full_config)
        log.info("resuming %s after epoch %d on %s", self.run_dir, state["epoch"], self.device)
        return state

    def _checkpoint(self, state: dict, weights: dict | None = None) -> None:
        if self.run_dir is None or not self.ctx.is_main:
            return
        opt_tensors, opt_meta = runs.split_state(self.optimizer.state_dict())
        weights = dict(weights or runs.network_state(self.network, self.loss))
        weights["__rng__.generator"] = self.generator.get_state()
        weights["__rng__.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":  # e.g. dropout in a fine-tuned pretrained network
            weights["__rng__.cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {"state": state, "optimizer": opt_meta, "scheduler": self.scheduler.state_dict()}
        runs.write_checkpoint(self.run_dir, state["epoch"], weights, opt_tensors, meta)

    def _diverged(self, state: dict, epoch: int, batch: int) -> None:
        where = (
            f"the last good checkpoint (epoch {state['epoch']}) is kept in {self.run_dir}"
            if self.run_dir is not None
            else "no run directory was given"
        )
        if self.run_dir is not None and self.ctx.is_main:
            write_json_atomic(
                self.run_dir / "result.json",
                {
                    "status": "diverged",
                    "epoch": state["epoch"],
                    "failed_epoch": epoch,
                    "failed_batch": batch,
                    "history": state["history"],
                },
            )
        raise TrainingDivergedError(
            f"the training loss or the weights became NaN or infinite at epoch {epoch}, "
            f"batch {batch}; {where}. "
            "Lower the learning rate (--lr) or the quantization weight, or check the inputs."
        )

    def _fit_rotation(self, X: np.ndarray, state: dict):
        """Stage two of ``h2q`` / ``itq``: fit the rotation on (a seeded subset of) training
        embeddings (:mod:`hashlearn.deep.two_stage`)."""
        cfg = self.config
        kind, mean, std = self.batch_input
        rng = np.random.default_rng(cfg.seed + 3)
        idx = np.sort(rng.permutation(len(X))[: cfg.h2q_max_samples])
        z = run_model(self.objective.codes, X[idx], kind, mean=mean, std=std)
        quantizer = two_stage.build_rotation(
            cfg.quantization, cfg.n_bits, loss=cfg.h2q_loss, solver=cfg.h2q_solver, seed=cfg.seed
        )
        start = time.perf_counter()
        with keep_torch_threads():
            quantizer, constant = two_stage.fit_rotation(quantizer, z, cfg.seed)
        state["h2q"] = {
            "method": cfg.quantization,
            "n_samples": len(idx),
            "seconds": time.perf_counter() - start,
            "constant_columns": constant,
        }
        if self.run_dir is not None and self.ctx.is_main:
            quantizer.save(self.run_dir / two_stage.ROTATION_FILES[cfg.quantization])
        return quantizer


def train_on_dataset(
    config: TrainConfig,
    dataset: Any,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
) -> runs.DeepHasher:
    """Train on a :class:`hashlearn.data.Dataset`: its ``train`` split, validated on its ``val``
    split (or a seeded hold-out of ``train`` when it has none), never on ``query``.

    The ``mlp`` backbone reads the split features ``X``; image backbones read ``images``.
    """
    field_name = "X" if input_kind(config.backbone) == "features" else "images"
    train, val = dataset.train, dataset.val
    if getattr(train, field_name) is None:
        raise HashlearnInputError(
            f"dataset {dataset.name!r} has no images; use --backbone mlp on its features."
        )
    extra = {
        "dataset": {
            "name": dataset.name,
            "protocol": dataset.protocol,
            "split_seed": dataset.split_seed,
            "n_classes": dataset.n_classes,
            "validation": "val split" if val is not None else "train hold-out",
        }
    }
    trainer = Trainer(config, run_dir, resume=resume, progress=progress, extra_config=extra)
    return trainer.fit(
        getattr(train, field_name),
        train.y,
        None if val is None else getattr(val, field_name),
        None if val is None else val.y,
        n_classes=dataset.n_classes,
    )
