"""``hashlearn evaluate``: fit methods on a dataset's train split and score Hamming retrieval."""

from __future__ import annotations

import argparse
import ast
import os
import sys
from pathlib import Path
from typing import Any

from hashlearn._io import HashlearnFileError, write_json_atomic
from hashlearn._validation import HashlearnInputError
from hashlearn.report import format_table

COLUMNS = (
    ("method", "method", "s"),
    ("bits", "bits", "d"),
    ("map", "mAP", ".4f"),
    ("precision_at_k", "P@k", ".4f"),
    ("recall_at_k", "R@k", ".4f"),
    ("precision_within_radius", "P(r<=2)", ".4f"),
    ("fit_s", "fit s", ".2f"),
    ("encode_s", "encode s", ".3f"),
    ("search_s", "search s", ".3f"),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="fit hashing methods and report mAP, P@k and precision within radius 2",
        description=(
            "Fit each method on the dataset's train split, encode query and database, search "
            "exactly by Hamming distance and print a results table (stdout)."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="registered name (see `hashlearn datasets`) or a file")
    source.add_argument("--model", help="a run directory written by `hashlearn train`")
    parser.add_argument("--method", default="sign", help="comma-separated method names")
    parser.add_argument("--bits", default="16,32,64", help="comma-separated code lengths")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra method parameter, e.g. --param n_anchors=300 (repeatable)",
    )
    parser.add_argument("--topk", type=int, default=None, help="mAP@topk (default: all)")
    parser.add_argument("--k", type=int, default=100, help="k for precision/recall@k")
    parser.add_argument(
        "--ties",
        choices=("stable", "aware"),
        default="stable",
        help="rank ties by id (stable) or average over tie orders (aware)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the methods")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the dataset split")
    parser.add_argument("--protocol", default=None, help="dataset split protocol")
    parser.add_argument("--data-dir", default=None, help="where to look for dataset files")
    parser.add_argument("--output", default=None, help="write results as JSON here")
    parser.add_argument("--plot", default=None, help="write PR-curve PNGs into this folder")
    parser.add_argument("--quiet", action="store_true", help="no progress or logs on stderr")
    parser.set_defaults(func=run)


def parse_int_list(text: str, name: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise HashlearnInputError(
            f"{name} must be comma-separated integers such as 16,32,64, got {text!r}."
        ) from None
    if not values or any(v < 1 for v in values):
        raise HashlearnInputError(f"{name} must list positive integers, got {text!r}.")
    return values


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["n_anchors=300", "loss=l1"]`` -> ``{"n_anchors": 300, "loss": "l1"}``."""
    params: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise HashlearnInputError(f"--param expects NAME=VALUE, got {item!r}.")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare word such as loss=l1
        params[name.strip()] = value
    return params


def _check_writable(path: str | None, kind: str) -> None:
    if path is None:
        return
    target = Path(path)
    folder = target if kind == "folder" else target.parent
    folder = folder if str(folder) else Path(".")
    if kind == "folder":
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HashlearnFileError(
                f"cannot create plot folder {folder}: {exc.strerror}."
            ) from None
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise HashlearnFileError(
            f"cannot write {kind} {target}: {folder} is not a writable folder; "
            "choose another location."
        )


def run(args: argparse.Namespace) -> int:
    _check_writable(args.output, "file")
    _check_writable(args.plot, "folder")
    if args.model is not None:
        records, meta = _evaluate_run(args)
    else:
        records, meta = _evaluate_dataset(args)
    title = f"{meta['dataset']}: mAP@{args.topk or 'all'}, P@{args.k}, ties={args.ties}"
    print(title)
    print(format_table(records, COLUMNS))
    if args.output:
        write_json_atomic(args.output, {**meta, "results": records})
        print(f"results written to {args.output}", file=sys.stderr)
    if args.plot:
        _write_plots(records, Path(args.plot), meta["dataset"])
    return 0


def _evaluate_dataset(args: argparse.Namespace) -> tuple[list[dict], dict]:
    from hashlearn.catalogue import get_method_class, method_parameters
    from hashlearn.data import load_dataset
    from hashlearn.evaluation import evaluate_grid

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    for method in methods:
        get_method_class(method)  # fail fast on a typo, before loading data
    bits = parse_int_list(args.bits, "--bits")
    params = parse_params(args.param)
    per_method = {
        m: {k: v for k, v in params.items() if k in method_parameters(m)} for m in methods
    }
    unused = set(params) - {k for p in per_method.values() for k in p}
    if unused:
        raise HashlearnInputError(
            f"no chosen method takes parameter(s) {', '.join(sorted(unused))}; "
            f"see the parameters of {', '.join(methods)} in their docstrings."
        )
    dataset = load_dataset(
        args.dataset,
        split_seed=args.split_seed,
        protocol=args.protocol,
        data_dir=args.data_dir,
        progress=not args.quiet,
    )
    records = evaluate_grid(
        methods,
        dataset,
        bits,
        progress=not args.quiet,
        params=per_method,
        topk=args.topk,
        k=args.k,
        seed=args.seed,
        ties=args.ties,
    )
    return records, {"dataset": dataset.name, "manifest": dataset.manifest}


def _evaluate_run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    try:
        from hashlearn.deep import evaluate_run
    except ImportError as exc:
        raise HashlearnInputError(
            f"evaluating a trained deep model needs PyTorch ({exc}); "
            "install it with: pip install 'hashlearn[deep]'."
        ) from None
    record = dict(
        evaluate_run(args.model, topk=args.topk, data_dir=args.data_dir, k=args.k, ties=args.ties)
    )
    record.setdefault("method", Path(args.model).name)
    record.setdefault("bits", record.get("n_bits"))
    return [record], {"dataset": record.get("dataset", str(args.model)), "model": args.model}


def _write_plots(records: list[dict], folder: Path, dataset: str) -> None:
    from hashlearn.report import plot_pr_curves

    for n_bits in sorted({r["bits"] for r in records}):
        curves = {r["method"]: r["pr_curve"] for r in records if r["bits"] == n_bits}
        path = plot_pr_curves(
            curves, folder / f"pr_{dataset}_{n_bits}bits.png", title=f"{dataset}, {n_bits} bits"
        )
        print(f"plot written to {path}", file=sys.stderr)
