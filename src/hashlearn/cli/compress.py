"""``hashlearn compress``: how much recall binary codes of your embeddings keep, with and
without rescoring; the logic is in :mod:`hashlearn.compress`."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from hashlearn._io import write_json_atomic
from hashlearn.cli._common import add_command, parse_int_list
from hashlearn.exceptions import HashlearnInputError

log = logging.getLogger("hashlearn")


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "compress",
        help="binary quantization of embeddings: recall@10 with and without rescoring",
        description=(
            "Hold out seeded queries from EMBEDDINGS (.npy, .npz or .parquet), fit each method on "
            "a sample of the rest, and report recall@10 of the exact cosine 10-NN from the codes "
            "alone and after rescoring oversample x 10 candidates with the float vectors, with "
            "bytes per vector, build time and queries/s; says the smallest setting reaching "
            "recall 0.95 and 0.99. 'sign' is sentence-transformers' binary quantization (sign "
            "at 0, bits = dimension)."
        ),
    )
    parser.add_argument("embeddings", help="a .npy, .npz (key X) or .parquet file")
    parser.add_argument("--bits", default="64,128,256", help="comma-separated code lengths")
    parser.add_argument(
        "--methods",
        default="sign,sign-centred,itq,h2q",
        help="comma-separated: sign, sign-centred, itq, h2q",
    )
    parser.add_argument("--queries", type=int, default=1000, help="held-out query vectors")
    parser.add_argument(
        "--oversample", default="1,2,4,10", help="comma-separated rescoring factors (>= 1)"
    )
    parser.add_argument("--sample", type=int, default=100_000, help="rows the methods fit on")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the methods")
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    parser.add_argument("--plot", default=None, help="write recall against bytes as a PNG here")
    parser.add_argument(
        "--save-quantizer",
        default=None,
        help="save the chosen quantizer (.npz): the smallest setting reaching recall 0.99, "
        "else 0.95, else the best one",
    )
    parser.set_defaults(func=run)


def _floats(text: str, name: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or any(not v >= 1 for v in values):
        raise HashlearnInputError(f"{name} must list numbers >= 1 such as 1,2,4,10, got {text!r}.")
    return values


def run(args: argparse.Namespace) -> int:
    from hashlearn.compress import (
        chosen_model,
        compress_report,
        format_report,
        load_embeddings,
        plot_report,
    )

    bits = parse_int_list(args.bits, "--bits")
    oversample = _floats(args.oversample, "--oversample")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.sample < 2:
        raise HashlearnInputError(f"--sample must be at least 2, got {args.sample}.")
    X = load_embeddings(args.embeddings)
    report = compress_report(
        X,
        bits=bits,
        methods=methods,
        n_queries=args.queries,
        oversample=oversample,
        sample=args.sample,
        seed=args.seed,
        progress=not args.quiet,
    )
    if not report["results"]:
        raise HashlearnInputError(
            f"no method applies at --bits {args.bits} to {report['dim']}-d embeddings (sign "
            "needs bits = dimension; no method takes more bits than dimensions)."
        )
    print(format_report(report))
    models = report.pop("models")
    if args.save_quantizer:
        (method, n_bits), model = chosen_model({**report, "models": models})
        model.save(args.save_quantizer)
        report["saved_quantizer"] = {"path": args.save_quantizer, "method": method, "bits": n_bits}
        print(f"saved the {method} {n_bits}-bit quantizer to {args.save_quantizer}")
    if args.output:
        write_json_atomic(args.output, {"embeddings": str(args.embeddings), **report})
        log.info("results written to %s", args.output)
    if args.plot:
        log.info("plot written to %s", plot_report(report, args.plot))
    return 0
