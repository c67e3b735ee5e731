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
from pathlib import Path

from hashlearn.cli._common import (
    LazyHelp,
    add_command,
    add_dataset_options,
    dataset_names,
    missing_optional,
    one_of,
)
from hashlearn.cli._flags import errors_as_flags, parser_flags
from hashlearn.cli.methods import DEEP_INSTALL

log = logging.getLogger("hashlearn")

#: Options that set a :class:`~hashlearn.deep.TrainConfig` field: option ``dest`` -> field.
#: They default to None here, so an option not given leaves TrainConfig's own default (the one
#: place the defaults live; ``--help`` reads them from there).
CONFIG_OPTIONS = {
    "loss": "loss",
    "quantization": "quantization",
    "quantization_weight": "quantization_weight",
    "h2q_solver": "h2q_solver",
    "h2q_loss": "h2q_loss",
    "stage1_activation": "stage1_activation",
    "head_lr_multiplier": "head_lr_multiplier",
    "projections": "n_projections",
    "bits": "n_bits",
    "backbone": "backbone",
    "freeze_backbone": "freeze_backbone",
    "weights": "weights",
    "transform": "transform",
    "precision": "precision",
    "num_workers": "num_workers",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "optimizer": "optimizer",
    "lr": "lr",
    "weight_decay": "weight_decay",
    "schedule": "schedule",
    "patience": "patience",
    "seed": "seed",
    "device": "device",
    "recipe": "recipe",
}
#: Library argument names that differ from this command's options (name -> option ``dest``).
ALIASES = {
    **{field: dest for dest, field in CONFIG_OPTIONS.items() if field != dest},
    "run_dir": "output",
}


def _losses() -> list[str]:
    from hashlearn.deep.losses import available_losses

    return available_losses()


def _quantizations() -> tuple[str, ...]:
    from hashlearn.vocab import QUANTIZATIONS

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
    from hashlearn.vocab import BACKBONES

    return BACKBONES


def _transforms() -> tuple[str, ...]:
    from hashlearn.deep.config import TRANSFORMS

    return TRANSFORMS


def _precisions() -> tuple[str, ...]:
    from hashlearn.deep.config import PRECISIONS

    return PRECISIONS


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


def _config_help(
    text: str, field: str, names: Callable[[], Iterable[str]] | None = None
) -> LazyHelp:
    """Help of an option that sets ``TrainConfig.<field>``: ``text``, the allowed ``names`` and
    the default, read from :class:`~hashlearn.deep.TrainConfig` when ``--help`` is shown."""

    def render() -> str:
        from hashlearn.deep.config import TrainConfig

        default = getattr(TrainConfig(), field)
        choices = f", {one_of(names())}" if names is not None else ""
        shown = "" if default is None else f" (default: {default})"
        return f"{text}{choices}{shown}"

    def render_or_install() -> str:
        try:
            return render()
        except ModuleNotFoundError as exc:
            if not missing_optional(exc):
                raise
            return f"{text} ({DEEP_INSTALL})"

    return LazyHelp(render_or_install)


def _recipes_help() -> LazyHelp:
    """Help of ``--recipe``: every recipe and what it sets (read when ``--help`` is shown)."""

    def render() -> str:
        from hashlearn.deep.config import available_recipes, describe_recipe

        lines = "; ".join(describe_recipe(name) for name in available_recipes())
        return (
            "the authors' training settings of a paper, applied before the options given "
            f"here (default: hashlearn's own). {lines}"
        )

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
    parser.add_argument("--loss", help=_config_help("similarity loss", "loss", _losses))
    parser.add_argument("--recipe", help=_recipes_help())
    parser.add_argument(
        "--quantization",
        help=_config_help("quantization strategy", "quantization", _quantizations),
    )
    parser.add_argument(
        "--quantization-weight",
        type=float,
        help="λ / α of the quantization term (default: the strategy's own)",
    )
    parser.add_argument(
        "--h2q-solver",
        help=_config_help("two-stage H²Q solver (sgd: the paper's)", "h2q_solver", _h2q_solvers),
    )
    parser.add_argument(
        "--h2q-loss", help=_config_help("two-stage H²Q loss", "h2q_loss", _h2q_losses)
    )
    parser.add_argument(
        "--stage1-activation",
        help=_config_help(
            "hash layer activation while training a two-stage run (identity: the H²Q "
            "authors' protocol)",
            "stage1_activation",
            _stage1_activations,
        ),
    )
    parser.add_argument(
        "--head-lr-multiplier",
        type=float,
        help=_config_help(
            "learning rate of the new layers (hash head, the loss's own) relative to --lr",
            "head_lr_multiplier",
        ),
    )
    parser.add_argument(
        "--projections",
        type=int,
        help=_config_help("random projections of swd", "n_projections"),
    )
    parser.add_argument("--bits", type=int, help=_config_help("code length", "n_bits"))
    parser.add_argument(
        "--backbone", help=_config_help("feature extractor", "backbone", _backbones)
    )
    parser.add_argument(
        "--freeze-backbone",
        action="store_true",
        default=None,
        help="train only the hash head over cached backbone features (default: fine-tune "
        "the backbone end to end)",
    )
    parser.add_argument(
        "--weights",
        help="weights of a pretrained network: a local file, a torchvision weights name "
        "(IMAGENET1K_V1), or none (random); default: ImageNet (torchvision's cache, downloaded "
        "there unless --no-download)",
    )
    parser.add_argument(
        "--transform",
        help=_config_help(
            "image preprocessing: h2q (resize 256, centre crop 224), deephash (random crop "
            "224 + flip for training), none (images as they are), auto (h2q on image files, "
            "none on arrays)",
            "transform",
            _transforms,
        ),
    )
    parser.add_argument(
        "--precision",
        help=_config_help(
            "backbone precision (autocast; fp16 adds a gradient scaler)", "precision", _precisions
        ),
    )
    parser.add_argument(
        "--num-workers",
        type=int,
        help=_config_help("image decoding worker processes", "num_workers"),
    )
    parser.add_argument(
        "--epochs", type=int, help=_config_help("maximum number of epochs", "epochs")
    )
    parser.add_argument(
        "--batch-size", type=int, help=_config_help("items per batch", "batch_size")
    )
    parser.add_argument("--optimizer", help=_config_help("optimizer", "optimizer", _optimizers))
    parser.add_argument("--lr", type=float, help=_config_help("learning rate", "lr"))
    parser.add_argument(
        "--weight-decay", type=float, help=_config_help("L2 weight decay", "weight_decay")
    )
    parser.add_argument(
        "--schedule", help=_config_help("learning-rate schedule", "schedule", _schedules)
    )
    parser.add_argument(
        "--patience",
        type=int,
        help=_config_help(
            "stop after this many epochs without a better validation mAP (0 = off)", "patience"
        ),
    )
    parser.add_argument(
        "--seed", type=int, help=_config_help("seed of weights and batches", "seed")
    )
    add_dataset_options(parser)
    parser.add_argument("--output", required=True, help="run directory to write")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output")
    parser.add_argument(
        "--device",
        help=_config_help(
            "auto (CUDA if available, else CPU), cpu, cuda or cuda:N; a run may be resumed "
            "on another device",
            "device",
        ),
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel under torchrun (gloo on CPU, nccl with one GPU per process on CUDA)",
    )
    parser.set_defaults(func=run, flags=parser_flags(parser, **ALIASES))


def run(args: argparse.Namespace) -> int:
    with errors_as_flags(args.flags):
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    from hashlearn._validation import HashlearnInputError

    try:
        from hashlearn.deep import TrainConfig, train_on_dataset
        from hashlearn.deep import distributed as dd
    except ModuleNotFoundError as exc:
        if not missing_optional(exc):
            raise
        raise HashlearnInputError(f"hashlearn train {DEEP_INSTALL} ({exc}).") from None
    from hashlearn.data import load_dataset

    given = {field: getattr(args, dest) for dest, field in CONFIG_OPTIONS.items()}
    config = TrainConfig.from_options({k: v for k, v in given.items() if v is not None}).validate()
    backend = dd.backend_for(dd.resolve_device(config.device))
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
            labels_path=args.labels,
        )
        hasher = train_on_dataset(
            config,
            dataset,
            args.output,
            resume=args.resume,
            progress=show,
            download=args.download,
            data_dir=args.data_dir,
        )
    finally:
        if args.distributed:
            dd.teardown()
    if ctx.is_main:
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
