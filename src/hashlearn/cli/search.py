"""``hashlearn search``: exact k-nearest neighbours of query codes in a database of codes."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn.cli._common import add_command

log = logging.getLogger("hashlearn")


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "search",
        help="exact Hamming k-NN of query codes in database codes",
        description="Search packed codes (.npy from `hashlearn encode`) exactly by Hamming "
        "distance; ties are ordered by database row.",
    )
    parser.add_argument("--database", required=True, help="database codes (.npy, uint8)")
    parser.add_argument("--queries", required=True, help="query codes (.npy, uint8)")
    parser.add_argument("-k", "--k", type=int, default=10, help="neighbours per query")
    parser.add_argument(
        "--bits", type=int, default=None, help="code length (default: 8 × bytes per code)"
    )
    parser.add_argument(
        "--output",
        default=None,
        help="write ids and distances (.npz or .json; default: print them on stdout)",
    )
    parser.set_defaults(func=run)


def _read_codes(path: str, name: str) -> np.ndarray:
    from hashlearn._validation import HashlearnInputError
    from hashlearn.data.files import read_arrays

    codes, _ = read_arrays(path, require_labels=False)
    if codes.dtype != np.uint8:
        raise HashlearnInputError(
            f"{name} file {path} holds {codes.dtype} values, not packed uint8 codes; "
            "create it with `hashlearn encode`."
        )
    return codes


def run(args: argparse.Namespace) -> int:
    from hashlearn._io import save_arrays, write_json_atomic
    from hashlearn.index import HammingIndex

    database = _read_codes(args.database, "--database")
    queries = _read_codes(args.queries, "--queries")
    index = HammingIndex(args.bits or 8 * database.shape[1])
    index.add(database)
    distances, ids = index.search(queries, args.k)
    if args.output is None:
        for row, (dist, found) in enumerate(zip(distances, ids)):
            pairs = " ".join(f"{i}:{d}" for i, d in zip(found, dist))
            print(f"{row}\t{pairs}")
    elif Path(args.output).suffix == ".json":
        write_json_atomic(args.output, {"ids": ids, "distances": distances, "k": args.k})
    else:
        save_arrays(args.output, {"ids": ids, "distances": distances}, {"k": args.k})
    if args.output:
        log.info("wrote the %d nearest of %d queries to %s", args.k, len(queries), args.output)
    return 0
