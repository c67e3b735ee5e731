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

log = logging.getLogger("hashlearn")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a deep hashing network (needs PyTorch)",
        description=(
            "Train a deep hashing network with any similarity loss and quantization strategy. "
            "Model selection uses the dataset's validation split (or a seeded hold-out of the "
            "training split), never the query split. Checkpoints are written every epoch; an "
            "interrupted run continues with --resume."
        ),
    )
    parser.add_argument("--dataset", required=True, help="registered dataset name or a file")
    parser.add_argument("--loss", default="dpsh", help="similarity loss (default: dpsh)")
    parser.add_argument(
        "--quantization",
        default="hswd",
        help="none, penalty, hswd, swd or h2q (two-stage) (default: hswd)",
    )
    parser.add_argument("--quantization-weight", type=float, default=None, help="λ / α")
    parser.add_argument("--projections", type=int, default=10000, help="random projections of swd")
    parser.add_argument("--bits", type=int, default=32, help="code length (default: 32)")
    parser.add_argument(
        "--backbone",
        default="cnn",
        help="cnn, mlp (dataset features), alexnet, vgg16, resnet50, efficientnet-lite0",
    )
    parser.add_argument(
        "--freeze-backbone",
        action="store_true",
        help="train only the hash head over cached backbone features",
    )
    parser.add_argument("--weights", default=None, help="local weights file of a pretrained net")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--optimizer", default="adam", help="adam or sgd")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--schedule", default="cosine", help="cosine, step or none")
    parser.add_argument("--patience", type=int, default=5, help="early stopping (0 = off)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and batches")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the dataset split")
    parser.add_argument("--protocol", default=None, help="dataset split protocol")
    parser.add_argument("--data-dir", default=None, help="where to look for dataset files")
    parser.add_argument("--output", required=True, help="run directory to write")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output")
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA if available, else CPU), cpu, cuda or cuda:N; a run may be resumed "
        "on another device (default: auto)",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel under torchrun (gloo on CPU, nccl with one GPU per process on CUDA)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress or logs on stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hashlearn._validation import HashlearnInputError

    try:
        from hashlearn.deep import TrainConfig, train_on_dataset
        from hashlearn.deep import distributed as dd
    except ImportError as exc:
        raise HashlearnInputError(
            f"hashlearn train needs PyTorch ({exc}); install it with `pip install hashlearn[deep]`."
        ) from None
    from hashlearn.data import load_dataset

    config = TrainConfig(
        loss=args.loss,
        n_bits=args.bits,
        quantization=args.quantization,
        quantization_weight=args.quantization_weight,
        n_projections=args.projections,
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
