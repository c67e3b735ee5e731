"""``hashlearn train``: train a deep hashing network into a run directory.

Example::

    hashlearn train --dataset fashion-mnist --loss dpsh --quantization hswd --bits 32 \\
        --backbone cnn --epochs 20 --output runs/dpsh-hswd-32
    hashlearn evaluate --model runs/dpsh-hswd-32

On a GPU (``--device auto``, the default, picks CUDA when torch sees one)::

    hashlearn train --dataset fashion-mnist ... --device cuda --output runs/gpu

Data-parallel on several processes (gloo on CPUs; nccl on GPUs, one GPU per process chosen by
torchrun's LOCAL_RANK)::

    torchrun --nproc-per-node 2 --no-python hashlearn train ... --distributed
    torchrun --nproc-per-node 4 --no-python hashlearn train ... --device cuda --distributed
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterable

from hashlearn._validation import HashlearnInputError
from hashlearn.cli._common import (
    LazyHelp,
    add_command,
    add_dataset_options,
    dataset_names,
    missing_optional,
    one_of,
)
from hashlearn.cli.methods import DEEP_INSTALL

log = logging.getLogger("hashlearn")


def _losses() -> list[str]:
    from hashlearn.deep.losses import available_losses

    return available_losses()


def _quantizations() -> tuple[str, ...]:
    from hashlearn.deep.quantization import QUANTIZATIONS

    return QUANTIZATIONS


def _h2q_solvers() -> tuple[str, ...]:
    from hashlearn.quantize.h2q import SOLVERS

    return SOLVERS


def _h2q_losses() -> tuple[str, ...]:
    from hashlearn.quantize.losses import LOSSES

    return LOSSES


def _stage1_activations() -> tuple[str, ...]:
    from hashlearn.deep.config import STAGE1_ACTIVATIONS

    return STAGE1_ACTIVATIONS


def _backbones() -> tuple[str, ...]:
    from hashlearn.deep.backbones import BACKBONES

    return BACKBONES


def _optimizers() -> tuple[str, ...]:
    from hashlearn.deep.config import OPTIMIZERS

    return OPTIMIZERS


def _schedules() -> tuple[str, ...]:
    from hashlearn.deep.config import SCHEDULES

    return SCHEDULES


def _deep_names(what: str, names: Callable[[], Iterable[str]]) -> LazyHelp:
    """Help listing names that live in :mod:`hashlearn.deep` (which needs PyTorch)."""

    def render() -> str:
        try:
            return f"{what}, {one_of(names())}"
        except ModuleNotFoundError as exc:
            if not missing_optional(exc):
                raise
            return f"{what} ({DEEP_INSTALL})"

    return LazyHelp(render)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "train",
        help="train a deep hashing network (needs PyTorch)",
        description=(
            "Train a deep hashing network with any similarity loss and quantization strategy. "
            "Model selection uses the dataset's validation split (or a seeded hold-out of the "
            "training split), never the query split. Checkpoints are written every epoch; an "
            "interrupted run continues with --resume. `hashlearn methods` describes every "
            "loss, quantization strategy and backbone."
        ),
    )
    parser.add_argument("--dataset", required=True, help=LazyHelp(dataset_names))
    parser.add_argument("--loss", default="dpsh", help=_deep_names("similarity loss", _losses))
    parser.add_argument(
        "--quantization",
        default="hswd",
        help=_deep_names("quantization strategy", _quantizations),
    )
    parser.add_argument(
        "--quantization-weight",
        type=float,
        default=None,
        help="λ / α of the quantization term (default: the strategy's own)",
    )
    parser.add_argument(
        "--h2q-solver",
        default="fast",
        help=_deep_names("two-stage H²Q solver (sgd: the paper's)", _h2q_solvers),
    )
    parser.add_argument(
        "--h2q-loss", default="l2", help=_deep_names("two-stage H²Q loss", _h2q_losses)
    )
    parser.add_argument(
        "--stage1-activation",
        default="identity",
        help=_deep_names(
            "hash layer activation while training a two-stage run (identity: the H²Q "
            "authors' protocol)",
            _stage1_activations,
        ),
    )
    parser.add_argument(
        "--head-lr-multiplier",
        type=float,
        default=1.0,
        help="learning rate of the new layers (hash head, the loss's own) relative to --lr",
    )
    parser.add_argument("--projections", type=int, default=10000, help="random projections of swd")
    parser.add_argument("--bits", type=int, default=32, help="code length")
    parser.add_argument(
        "--backbone",
        default="cnn",
        help=_deep_names("feature extractor", _backbones),
    )
    parser.add_argument(
        "--freeze-backbone",
        action="store_true",
        help="train only the hash head over cached backbone features",
    )
    parser.add_argument("--weights", default=None, help="local weights file of a pretrained net")
    parser.add_argument("--epochs", type=int, default=20, help="maximum number of epochs")
    parser.add_argument("--batch-size", type=int, default=128, help="items per batch")
    parser.add_argument("--optimizer", default="adam", help=_deep_names("optimizer", _optimizers))
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay")
    parser.add_argument(
        "--schedule",
        default="cosine",
        help=_deep_names("learning-rate schedule", _schedules),
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=5,
        help="stop after this many epochs without a better validation mAP (0 = off)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and batches")
    add_dataset_options(parser)
    parser.add_argument("--output", required=True, help="run directory to write")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output")
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA if available, else CPU), cpu, cuda or cuda:N; a run may be resumed "
        "on another device",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel under torchrun (gloo on CPU, nccl with one GPU per process on CUDA)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from hashlearn.deep import TrainConfig, train_on_dataset
        from hashlearn.deep import distributed as dd
    except ModuleNotFoundError as exc:
        if not missing_optional(exc):
            raise
        raise HashlearnInputError(f"hashlearn train {DEEP_INSTALL} ({exc}).") from None
    from hashlearn.data import load_dataset

    config = TrainConfig(
        loss=args.loss,
        n_bits=args.bits,
        quantization=args.quantization,
        quantization_weight=args.quantization_weight,
        n_projections=args.projections,
        h2q_solver=args.h2q_solver,
        h2q_loss=args.h2q_loss,
        stage1_activation=args.stage1_activation,
        head_lr_multiplier=args.head_lr_multiplier,
        backbone=args.backbone,
        freeze_backbone=args.freeze_backbone,
        weights=args.weights,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        epochs=args.epochs,
        batch_size=args.batch_size,
        patience=args.patience,
        seed=args.seed,
        device=args.device,
    ).validate()
    from hashlearn.deep.config import resolve_device

    backend = dd.backend_for(resolve_device(config.device))
    ctx = dd.setup(backend) if args.distributed else dd.current()
    show = not args.quiet and ctx.is_main
    try:
        dataset = load_dataset(
            args.dataset,
            split_seed=args.split_seed,
            protocol=args.protocol,
            data_dir=args.data_dir,
            download=args.download,
            progress=show,
        )
        hasher = train_on_dataset(config, dataset, args.output, resume=args.resume, progress=show)
    finally:
        if args.distributed:
            dd.teardown()
    if ctx.is_main:
        from pathlib import Path

        result = json.loads((Path(args.output) / "result.json").read_text(encoding="utf-8"))
        summary = {
            "output": args.output,
            "status": result["status"],
            "epochs": result["epoch"],
            "best_epoch": result["best_epoch"],
            "best_val_map": result["best_map"],
            "n_bits": hasher.n_bits,
        }
        print(json.dumps(summary), file=sys.stdout)
        log.info("evaluate it with: hashlearn evaluate --model %s", args.output)
    return 0
