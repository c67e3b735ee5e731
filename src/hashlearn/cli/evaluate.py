"""``hashlearn evaluate``: fit methods on a dataset's train split and score Hamming retrieval."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from hashlearn._io import HashlearnFileError, write_json_atomic
from hashlearn.cli._common import (
    LazyHelp,
    add_command,
    add_dataset_options,
    dataset_names,
    method_names,
    missing_optional,
    parse_int_list,
    parse_params,
)
from hashlearn.cli._flags import errors_as_flags
from hashlearn.cli.methods import DEEP_INSTALL
from hashlearn.report import format_table, results_columns
from hashlearn.vocab import (
    DEFAULT_K,
    DEFAULT_NO_RELEVANT,
    DEFAULT_TIES,
    DEFAULT_TOPK,
    NO_RELEVANT,
    TIES,
    TOPK_RULES,
)

log = logging.getLogger("hashlearn")


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "evaluate",
        help="fit hashing methods and report mAP, P@k, R@k and precision within radius 2",
        description=(
            "Fit each method on the dataset's train split, encode query and database, search "
            "exactly by Hamming distance and print a results table (stdout). With --model, "
            "evaluate a run directory written by `hashlearn train` on its own dataset split."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help=LazyHelp(dataset_names))
    source.add_argument("--model", help="a run directory written by `hashlearn train`")
    parser.add_argument(
        "--method",
        default="sign",
        help=LazyHelp(lambda: "comma-separated method names, each " + method_names()),
    )
    parser.add_argument("--bits", default="16,32,64", help="comma-separated code lengths")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra method parameter, e.g. --param n_anchors=300 (repeatable; given to every "
        "chosen method that takes it)",
    )
    parser.add_argument(
        "--topk",
        type=parse_topk,
        default=DEFAULT_TOPK,
        help="mAP@topk: a number, 'all', or 'protocol' for the dataset protocol's cut-off "
        "(shown by `hashlearn datasets`; mAP@all for user data)",
    )
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="k of precision and recall@k")
    parser.add_argument(
        "--ties",
        choices=TIES,
        default=DEFAULT_TIES,
        help="rank Hamming ties by database id (stable), average over tie orders (aware) or "
        "order them by the continuous codes' cosine distance (continuous, H2Q's rule)",
    )
    parser.add_argument(
        "--no-relevant",
        choices=NO_RELEVANT,
        default=DEFAULT_NO_RELEVANT,
        help="queries with no relevant database item: left out of the means (skip) or "
        "scored 0 (zero, DeepHash-pytorch's CalcTopMap)",
    )
    parser.add_argument(
        "--neighbours",
        choices=("cosine", "ip", "l2", "l2-radius"),
        default=None,
        help="also score recall of the exact float k-NN (by this similarity) among the Hamming "
        "top-R, or with l2-radius ITQ's protocol (true neighbours within the mean distance to "
        "the 50th nearest; P@k and R@k of the Hamming top --k); a features file without labels "
        "is then scored by these metrics only",
    )
    parser.add_argument(
        "--nn-k", type=int, default=10, help="true neighbours per query for --neighbours"
    )
    parser.add_argument(
        "--candidates",
        default="10,100",
        help="comma-separated R: Hamming candidates searched for the true --nn-k (recall k@R)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random_state of the methods")
    add_dataset_options(parser)
    parser.add_argument("--output", default=None, help="write results as JSON here")
    parser.add_argument("--plot", default=None, help="write PR-curve PNGs into this folder")
    parser.set_defaults(func=run)  # flags: set for every command by main.build_parser


def parse_topk(text: str) -> int | str:
    """``--topk``: a positive integer, ``all`` or ``protocol``."""
    if text.strip().lower() in TOPK_RULES:
        return text.strip().lower()
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    return value


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
        _report(args, records, meta)
        return 0
    records: list[dict] = []
    meta: dict[str, Any] = {}
    try:
        _evaluate_dataset(args, records, meta)
    except BaseException as exc:
        # A cell failed or the run was interrupted: keep the cells that finished.
        if records:
            cause = str(exc) or type(exc).__name__
            meta["incomplete"] = f"stopped after {len(records)} cell(s): {cause}"
            _report(args, records, meta)
            log.warning("wrote the %d finished cell(s) before the error below", len(records))
        raise
    _report(args, records, meta)
    return 0


def _report(args: argparse.Namespace, records: list[dict], meta: dict[str, Any]) -> None:
    """Print the results table; write the JSON (``--output``) and plots (``--plot``)."""
    print(f"{meta['dataset']} (ties={args.ties})")
    print(format_table(records, _columns(args, records, meta["topk"])))
    if args.output:
        write_json_atomic(args.output, {**meta, "results": records})
        log.info("results written to %s", args.output)
    if args.plot:
        _write_plots(records, Path(args.plot), meta["dataset"])


def _columns(args: argparse.Namespace, records: list[dict], topk: int | None) -> list:
    """The label columns (when the dataset has labels), the neighbour columns, the timings."""
    from hashlearn.evaluation import neighbour_columns

    columns = results_columns(k=args.k, topk=topk)
    if getattr(args, "neighbours", None) is None:
        return columns
    timing = [c for c in columns if c[0].endswith("_s")]
    labels = [c for c in columns if c not in timing]
    if all(r.get("map") is None for r in records):
        labels = [c for c in labels if c[0] in ("method", "bits")]
    if args.neighbours == "l2-radius":
        extra = [
            ("l2r_precision_at_k", f"L2r P@{args.k}", ".4f"),
            ("l2r_recall_at_k", f"L2r R@{args.k}", ".4f"),
        ]
    else:
        extra = [
            (key, f"{args.neighbours} R{args.nn_k}@{key.rsplit('@', 1)[1]}", ".4f")
            for key in neighbour_columns(args.nn_k, _candidates(args))
        ]
    return labels + extra + timing


def _candidates(args: argparse.Namespace) -> list[int]:
    return parse_int_list(args.candidates, "--candidates")


def _evaluate_dataset(args: argparse.Namespace, records: list[dict], meta: dict) -> None:
    """Fill ``records`` (cell by cell, as they finish) and ``meta`` for ``--dataset``."""
    from hashlearn._validation import HashlearnInputError
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
        download=args.download,
        progress=not args.quiet,
        require_labels=args.neighbours is None,
        labels_path=args.labels,
    )
    topk = dataset.resolve_topk(args.topk)
    if args.nn_k < 1:
        raise HashlearnInputError(f"--nn-k must be a positive integer, got {args.nn_k}.")
    neighbour_options = {}
    if args.neighbours is not None:
        neighbour_options = dict(
            neighbours=args.neighbours, nn_k=args.nn_k, candidates=_candidates(args)
        )
    meta.update(dataset=dataset.name, topk=topk, manifest=dataset.manifest)
    evaluate_grid(
        methods,
        dataset,
        bits,
        progress=not args.quiet,
        params=per_method,
        records=records,
        topk=topk,
        k=args.k,
        seed=args.seed,
        ties=args.ties,
        no_relevant=args.no_relevant,
        **neighbour_options,
    )


def _evaluate_run(args: argparse.Namespace) -> tuple[list[dict], dict]:
    from hashlearn._validation import HashlearnInputError

    if args.neighbours is not None:
        raise HashlearnInputError(
            "--neighbours applies to --dataset evaluations; a trained run is scored by labels."
        )
    try:
        from hashlearn.deep import load_run  # noqa: F401  (torch present?)
        from hashlearn.evaluation import evaluate_run
    except ModuleNotFoundError as exc:
        if not missing_optional(exc):
            raise
        raise HashlearnInputError(
            f"evaluating a trained deep model {DEEP_INSTALL} ({exc})."
        ) from None
    # A run without weights yet is continued by `hashlearn train`, not by this command.
    flags = {**args.flags, "resume": f"hashlearn train ... --output {args.model} --resume"}
    with errors_as_flags(flags):
        record = evaluate_run(
            args.model,
            topk=args.topk,
            data_dir=args.data_dir,
            download=args.download,
            k=args.k,
            ties=args.ties,
            no_relevant=args.no_relevant,
        )
    return [record], {"dataset": record["dataset"], "model": args.model, "topk": record["topk"]}


def _write_plots(records: list[dict], folder: Path, dataset: str) -> None:
    from hashlearn.report import plot_pr_curves

    for n_bits in sorted({r["bits"] for r in records}):
        curves = {
            r["method"]: r["pr_curve"] for r in records if r["bits"] == n_bits and "pr_curve" in r
        }
        if not curves:  # an unlabelled dataset has no precision-recall curves
            continue
        path = plot_pr_curves(
            curves, folder / f"pr_{dataset}_{n_bits}bits.png", title=f"{dataset}, {n_bits} bits"
        )
        log.info("plot written to %s", path)
