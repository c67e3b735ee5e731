"""Seeded, resumable training of a deep hashing network with any loss × quantization strategy.

The objective of a batch is ``loss(activate(z), labels, indices) + quantization(z or a)``
(Doan et al., CVPR 2022, Eq. 1: a similarity-preserving loss plus a quantization term), where
``z`` are the network's continuous codes. With the two-stage strategy ``h2q`` (Schwengber et
al., arXiv 2311.04207) the quantization term is zero while training; afterwards the H²Q
rotation is fitted on the training embeddings and applied before taking signs.

Model selection uses a validation split only — the protocol's ``val`` split, or, when it has
none, a seeded hold-out of the training split recorded in ``config.json`` — never the query
split (the README's "Evaluation conventions"). Everything is seeded: the same configuration
and seed give bit-identical weights on the same machine, and an interrupted run resumed from
its last checkpoint continues exactly as if it had not stopped (the batch order of epoch ``e``
is drawn from ``seed`` and ``e`` alone; random-number states are checkpointed).

Training runs on ``TrainConfig.device``: the network, the loss module (with its parameters and
buffers), batches, labels and indices live there, while every random draw (weights, batch
order, hold-out, HSWD/SWD targets) comes from CPU generators, so the same seed draws the same
numbers on every device. Checkpoints hold CPU copies, so a run resumes on any device.

Every input reaches the network through one ``torch.utils.data`` pipeline
(:mod:`hashlearn.deep.pipeline`): in-memory arrays a batch at a time, images with a transform
(lazy files always) decoded and transformed in ``num_workers`` processes; the batch order comes
from :class:`~hashlearn.deep.pipeline.EpochBatchSampler`. ``precision`` ``bf16`` / ``fp16``
runs the backbone under autocast (fp16 with a gradient scaler, checkpointed).
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

import hashlearn.deep.distributed as dd
import hashlearn.deep.two_stage as two_stage
from hashlearn._validation import HashlearnInputError
from hashlearn.codes import code_statistics, pack
from hashlearn.data.images import ImageTransform
from hashlearn.deep.config import TrainConfig, TrainingDivergedError
from hashlearn.deep.features import frozen_features, to_batch
from hashlearn.deep.hasher import DeepHasher, rowwise_head
from hashlearn.deep.inputs import split_validation, to_multihot
from hashlearn.deep.objective import build_objective, deterministic, keep_torch_threads
from hashlearn.deep.optim import make_optimizer, make_scheduler, parameter_groups
from hashlearn.deep.pipeline import (
    EpochBatchSampler,
    device_batches,
    encode_inputs,
    make_loader,
    training_input_spec,
)
from hashlearn.deep.runs import (
    RunDirectory,
    capture_training_state,
    cpu_copy,
    load_network_state,
    network_state,
    new_progress,
    record_epoch,
    restore_training_state,
)
from hashlearn.metrics import mean_average_precision

log = logging.getLogger("hashlearn")

__all__ = ["Trainer"]


class Trainer:
    """Train one :class:`TrainConfig` on in-memory arrays; see :meth:`fit`.

    Args:
        config: the training configuration.
        run_dir: run directory for config, checkpoints and the model (None: nothing written).
        resume: continue the run in ``run_dir`` from its newest intact checkpoint (an error
            when ``run_dir`` holds no run; see :mod:`hashlearn.deep.runs`).
        progress: tqdm progress bars on stderr (epoch loss and validation mAP).
        extra_config: more JSON to store in ``config.json`` (e.g. the dataset's name and split).
        download: let torchvision download ImageNet weights missing from torch's cache.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path | None = None,
        *,
        resume: bool = False,
        progress: bool = True,
        extra_config: dict | None = None,
        download: bool = True,
    ):
        self.config = config.validate()
        self.download = download
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.resume = resume
        self.progress = progress
        self.extra_config = extra_config or {}
        self.ctx = dd.current()
        self.device = dd.process_device(dd.resolve_device(config.device), self.ctx)
        self.run = RunDirectory(self.run_dir, self.ctx)

    # -- public ------------------------------------------------------------------------------
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        *,
        n_classes: int | None = None,
        image_transform: ImageTransform | None = None,
    ) -> DeepHasher:
        """Train on ``(X, y)`` (images or features, by backbone) and return the hasher.

        ``X`` is an array, or for image backbones a lazy image sequence
        (:class:`hashlearn.data.images.ImageFiles`), fine-tuned through ``config.transform``.
        ``y`` are 1-D class ids or 2-D multi-hot labels; ``X_val``/``y_val`` is the validation
        split (None: hold out ``val_fraction`` of the training items, seeded). With
        ``image_transform``, ``X``/``X_val`` are the frozen backbone's features of lazy images
        prepared by that transform (:mod:`hashlearn.deep.train_dataset`).
        """
        cfg = self.config
        lazy = not isinstance(X, np.ndarray) and hasattr(X, "subset")
        X, y = (X if lazy else np.asarray(X)), np.asarray(y)
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
        X, y, X_val, y_val, holdout = split_validation(
            X, y, X_val, y_val, val_fraction=cfg.val_fraction, seed=cfg.seed
        )
        labels = to_multihot(y, n_classes)
        self.labels = labels.to(self.device)
        to_multihot(y_val, n_classes, "val labels")  # validates the format
        self.features_given = image_transform is not None
        spec = training_input_spec(cfg, X, lazy=lazy, features_transform=image_transform)
        with deterministic(self.device), self.run.locked(self.resume):
            torch.manual_seed(cfg.seed)
            self._build(spec, labels)
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
            self.saved = self.run.open(self.full_config, self.resume)
            return self._train(X, y, X_val, y_val)

    # -- set-up ------------------------------------------------------------------------------
    def _build(self, spec: dict, labels: torch.Tensor) -> None:
        cfg = self.config
        self.objective, self.net_spec, self.generator = build_objective(
            cfg, spec, labels, download=self.download
        )
        self.network, self.loss = self.objective.network, self.objective.loss
        self.quant = self.objective.quantization
        if self.quant.two_stage and not self.loss.rotation_invariant and self.ctx.is_main:
            log.warning(
                "two-stage %s assumes a rotation-invariant similarity loss; %r optimises the "
                "codes' signs or fixed per-bit targets, so the rotation can lower its mAP "
                "(compare with `quantization='none'`).",
                cfg.quantization,
                cfg.loss,
            )
        # Built (and initialised from the seed) on the CPU, then moved: same weights everywhere.
        self.objective.to(self.device)
        if self.device.type == "cuda" and spec["kind"] == "images":
            self.network.backbone.to(memory_format=torch.channels_last)
        # fp16 needs loss scaling (its range underflows small gradients); bf16 and fp32 do not.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16")
        # A loss may fix its own parameters' learning rate (HyP²'s proxies: 1e-3).
        own_lr = getattr(self.loss, "parameter_lr", None)
        fixed = [p for p in self.loss.parameters() if p.requires_grad] if own_lr else []
        skip = {id(p) for p in fixed}
        params = [p for p in self.objective.parameters() if p.requires_grad and id(p) not in skip]
        if cfg.head_lr_multiplier != 1.0:  # new layers: the hash head and the loss's own
            new = [p for m in (self.network.head, self.loss) for p in m.parameters()]
            params = parameter_groups(params, new, cfg.lr * cfg.head_lr_multiplier)
        if fixed:
            groups = params if params and isinstance(params[0], dict) else [{"params": params}]
            params = [g for g in groups if g["params"]] + [{"params": fixed, "lr": float(own_lr)}]
        self.optimizer = make_optimizer(
            cfg.optimizer, params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum
        )
        self.scheduler = make_scheduler(
            cfg.schedule,
            self.optimizer,
            epochs=cfg.epochs,
            step_size=cfg.step_size,
            gamma=cfg.gamma,
        )
        self.input = spec

    # -- main loop ---------------------------------------------------------------------------
    def _train(self, X, y, X_val, y_val) -> DeepHasher:
        cfg, ctx = self.config, self.ctx
        spec = self.input
        train_tf = eval_tf = None
        if "transform" in spec and not cfg.freeze_backbone:
            eval_tf = ImageTransform(**spec["transform"])
            train_tf = ImageTransform(**spec.get("train_transform", spec["transform"]))
        # Run the frozen backbone once (lazy images: done already) and train the head on its
        # output (features of the evaluation transform: augmentation cannot be cached).
        if cfg.freeze_backbone and not self.features_given:
            X, X_val = (
                frozen_features(
                    self.network.backbone,
                    arr,
                    spec,
                    cache=self.run.feature_cache(name),
                    num_workers=cfg.num_workers,
                    progress=self.progress and ctx.is_main,
                )
                for name, arr in (("train", X), ("val", X_val))
            )
        kind, mean, std = spec["kind"], spec["mean"], spec["std"]
        if cfg.freeze_backbone:
            kind, mean, std = "features", 0.0, 1.0
        self.batch_input = {"kind": kind, "mean": mean, "std": std, "transform": eval_tf}
        self.sampler = EpochBatchSampler(len(X), cfg.batch_size, cfg.seed, ctx)
        self.loader = make_loader(
            X,
            kind=kind,
            mean=mean,
            std=std,
            transform=train_tf,
            batch_sampler=self.sampler,
            num_workers=cfg.num_workers,
            seed=cfg.seed,
            device=self.device,
            convert=to_batch,
        )
        if hasattr(self.quant, "check_schedule"):  # HashNet's continuation
            self.quant.check_schedule(cfg.epochs * max(len(X) // cfg.batch_size, 1), cfg.epochs)
        state = self._start()
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
            record_epoch(state, epoch, totals, val_map, self.val_code_statistics, seconds, lr)
            if self.scaler.is_enabled():
                state["grad_scaler"] = self.scaler.state_dict()
            self._early_stopping(state, val_map)
            self._checkpoint(state)
            epochs_bar.update(1)
            epochs_bar.set_postfix(loss=f"{totals[0]:.4f}", val_map=f"{val_map:.4f}")
        epochs_bar.close()
        if state["status"] == "running":
            state["status"] = "finished"
        self.history, self.status = state["history"], state["status"]
        # The last checkpoint keeps the last epoch's weights (a run resumed with more epochs
        # continues from there, with its optimizer state); the returned model has the best's.
        last = cpu_copy(network_state(self.network, self.loss))
        load_network_state(self.network, self._best, self.loss)
        h2q = self._fit_rotation(X, state, X_val) if self.quant.two_stage else None
        self._checkpoint(state, last)
        keys = ("status", "epoch", "best_epoch", "best_map", "history", "h2q")
        self.run.write_result({k: state.get(k) for k in keys})
        dd.barrier(ctx)
        return DeepHasher(self.network, self.full_config, h2q)

    def _run_epoch(self, model, X, epoch: int, state: dict, show: bool) -> list[float]:
        """One pass over this rank's shard of the epoch's seeded permutation."""
        cfg, device = self.config, self.device
        items = getattr(self.loss, "epoch_items", lambda epoch: None)(epoch)  # ADSH's subsets
        self.sampler.set_epoch(epoch, items)
        set_epoch = getattr(self.loader.dataset, "set_epoch", None)  # seeded augmentation
        if set_epoch is not None:
            set_epoch(epoch)
        hook = getattr(self.loss, "on_epoch_end", None)
        wants = hook is not None and self.loss.needs_epoch_embeddings
        buffer = torch.zeros(len(X), cfg.n_bits, device=device) if wants else None
        set_iteration = getattr(self.quant, "set_iteration", None)  # HashNet's continuation
        seen = torch.zeros(len(X), device=device)
        totals, n_batches = torch.zeros(3, device=device), 0
        self.objective.train()
        n_full = len(self.sampler)
        batches = device_batches(self.loader, device)
        bar = tqdm(batches, total=n_full, desc=f"epoch {epoch}", leave=False, disable=not show)
        for b, (x, cpu_idx) in enumerate(bar):
            idx = cpu_idx.to(device, non_blocking=True)
            if set_iteration is not None:
                set_iteration((epoch - 1) * n_full + b + 1, epoch)
            value, sim, quant, z = model(x, self.labels[idx], idx)
            parts = dd.mean_over_ranks(torch.stack([value.detach(), sim, quant]).float(), self.ctx)
            mean_value = parts[0]
            if not torch.isfinite(mean_value):
                self._diverged(state, epoch, n_batches)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(value).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
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

    def _encode(self, X) -> np.ndarray:
        """Continuous codes of ``X`` (prepared as for evaluation), in order; float32 NumPy.

        Feature rows on the CPU go through :func:`~hashlearn.deep.hasher.rowwise_head`, as
        :meth:`DeepHasher.embed` does, so validation and the two-stage rotation see exactly
        the embeddings the saved model encodes."""
        b = self.batch_input
        if b["kind"] == "features" and self.device.type == "cpu":
            z = rowwise_head(self.network, X, b["mean"], b["std"],
                             backbone_features=self.objective.features_input)  # fmt: skip
            if z is not None:
                return z
        return encode_inputs(
            self.objective.codes,
            X,
            device=self.device,
            kind=b["kind"],
            mean=b["mean"],
            std=b["std"],
            transform=b["transform"],
            num_workers=self.config.num_workers,
            convert=to_batch,
        )

    def _all_embeddings(self, buffer: torch.Tensor, seen: torch.Tensor, X) -> torch.Tensor:
        """Every training item's embedding of this epoch, in training order, for stateful
        losses: rows seen in a batch (on any rank) as computed there; the few items left out by
        full-batch sharding are embedded now."""
        buffer, seen = dd.sum_over_ranks(buffer, self.ctx), dd.sum_over_ranks(seen, self.ctx)
        missing = (seen == 0).nonzero().flatten().cpu().numpy()
        if len(missing):
            z = self._encode(X[missing])
            buffer[torch.from_numpy(missing).to(buffer.device)] = torch.from_numpy(z).to(buffer)
        return buffer

    def _validation_map(self, Xq, yq, Xdb, ydb) -> float:
        """mAP@all of sign codes: validation items against training items (never the query).

        Also keeps the validation codes' quantization error and per-bit entropy
        (:func:`hashlearn.codes.code_statistics`) for the epoch's history."""
        z = self._encode(Xq)
        self.val_code_statistics = code_statistics(z)
        q = pack(z)
        db = pack(self._encode(Xdb))
        with keep_torch_threads():
            return float(mean_average_precision(q, db, yq, ydb))

    def _early_stopping(self, state: dict, val_map: float) -> None:
        """Keep the best validation epoch; stop after ``patience`` epochs that did not beat the
        last reference by more than ``min_delta`` (as Lightning's ``EarlyStopping`` beside a
        ``ModelCheckpoint`` on the same metric, the H²Q code's ``src/models/QS/train.py``)."""
        cfg = self.config
        reference = state.get("stop_map", state["best_map"])  # runs saved before stop_map
        if val_map > state["best_map"]:
            state.update(best_map=val_map, best_epoch=state["epoch"])
            self._best = cpu_copy(network_state(self.network, self.loss))
            self.run.save_best(self._best)
        if val_map > reference + cfg.min_delta:
            state.update(stop_map=val_map, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
            if cfg.patience and state["bad_epochs"] >= cfg.patience:
                state["status"] = "early_stopped"

    # -- run directory -----------------------------------------------------------------------
    def _start(self) -> dict:
        """Fresh progress, or the progress and training state of the run being resumed."""
        self._best = cpu_copy(network_state(self.network, self.loss))
        if self.saved is None:
            return new_progress()
        state = restore_training_state(
            self.saved, self.objective, self.optimizer, self.scheduler, self.generator, self.device
        )
        self.saved = None  # the tensors are in the network and optimizer now
        if "grad_scaler" in state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["grad_scaler"])
        best = self.run.load_best(self.full_config)
        if best is not None:
            self._best = best
        if state["epoch"] < self.config.epochs and state["status"] != "early_stopped":
            state["status"] = "running"
        log.info("resuming %s after epoch %d on %s", self.run_dir, state["epoch"], self.device)
        return state

    def _checkpoint(self, state: dict, weights: dict | None = None) -> None:
        if not self.run.writes:
            return
        weights = weights if weights is not None else network_state(self.network, self.loss)
        training = capture_training_state(
            weights, self.optimizer, self.scheduler, self.generator, self.device
        )
        self.run.save_checkpoint(state["epoch"], training, state)

    def _diverged(self, state: dict, epoch: int, batch: int) -> None:
        where = self.run.report_divergence(state, epoch, batch)
        raise TrainingDivergedError(
            f"the training loss or the weights became NaN or infinite at epoch {epoch}, "
            f"batch {batch}; {where}. Lower the learning rate (`lr`) or the quantization "
            "weight (`quantization_weight`), or check the inputs."
        )

    def _fit_rotation(self, X: np.ndarray, state: dict, X_val: np.ndarray) -> Any:
        """Stage two of ``h2q`` / ``itq``: fit the rotation on (a seeded subset of) training
        embeddings; H²Q's ``sgd`` keeps its epoch of lowest loss on the validation embeddings
        (:mod:`hashlearn.deep.two_stage`)."""
        cfg = self.config
        rng = np.random.default_rng(cfg.seed + 3)
        idx = np.sort(rng.permutation(len(X))[: cfg.h2q_max_samples])
        z = self._encode(X[idx])
        z_val = None
        if cfg.quantization == "h2q" and cfg.h2q_solver == "sgd":
            z_val = self._encode(X_val)
        with keep_torch_threads():
            quantizer, state["h2q"] = two_stage.fit_stage_two(cfg, z, z_val)
        self.run.save_rotation(quantizer, two_stage.ROTATION_FILES[cfg.quantization])
        return quantizer
