"""``hashlearn fit``: learn a hashing method on your features and save it (npz, no pickle)."""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

from hashlearn.cli._common import LazyHelp, add_command, method_names, parse_params

log = logging.getLogger("hashlearn")


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "fit",
        help="fit a hashing method on a features file and save the model",
        description="Fit a registered method on features (.npz with X[/y], .npy, .csv) and "
        "save it for `hashlearn encode`. Supervised methods need labels.",
    )
    parser.add_argument("--method", required=True, help=LazyHelp(method_names))
    parser.add_argument("--bits", type=int, required=True, help="code length")
    parser.add_argument("--data", required=True, help="training features file")
    parser.add_argument("--labels", default=None, help="labels file (for supervised methods)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra method parameter, e.g. --param loss=l1 (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random_state of the method")
    parser.add_argument("--output", required=True, help="model file to write (.npz)")
    parser.add_argument(
        "--no-csv-labels",
        action="store_true",
        help="a .csv/.tsv --data has no label column (default: its last column is the label)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hashlearn.base import needs_labels
    from hashlearn.catalogue import make_method
    from hashlearn.data import read_arrays

    model = make_method(
        args.method, n_bits=args.bits, random_state=args.seed, **parse_params(args.param)
    )
    X, y = read_arrays(
        args.data,
        args.labels,
        require_labels=needs_labels(model),
        csv_labels=not args.no_csv_labels,
    )
    start = time.perf_counter()
    model.fit(X, y)  # unsupervised methods ignore y, as in scikit-learn
    seconds = time.perf_counter() - start
    model.save(args.output)
    summary = {
        "method": args.method, "bits": args.bits, "n_samples": len(X),
        "n_features": int(X.shape[1]), "fit_s": round(seconds, 4), "model": args.output,
    }  # fmt: skip
    print(json.dumps(summary))
    log.info("saved %s model to %s", args.method, args.output)
    return 0
