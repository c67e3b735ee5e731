"""``hashlearn index build`` / ``hashlearn index search``: code stores on disk, searched exactly."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import HashlearnFileError
from hashlearn.cli._common import add_command

log = logging.getLogger("hashlearn")


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "index",
        help="build an index file from packed codes, or search one",
        description="Build a checksummed index file from packed codes (.npy from "
        "`hashlearn encode`) and search it exactly (k nearest or all within a radius).",
    )
    commands = parser.add_subparsers(dest="index_command", metavar="ACTION")
    commands.required = True

    build = add_command(commands, "build", help="write an index file")
    build.add_argument("--codes", required=True, help="database codes (.npy, packed uint8)")
    build.add_argument("--ids", default=None, help="int64 id per code (.npy); default: row numbers")
    build.add_argument(
        "--kind",
        choices=("flat", "mih"),
        default="flat",
        help="flat scan or multi-index hashing, both exact (default: flat)",
    )
    build.add_argument(
        "--n-tables", type=int, default=None, help="MIH substrings m (default: n_bits / log2 n)"
    )
    build.add_argument("--bits", type=int, default=None, help="code length (default: 8 × bytes)")
    build.add_argument("--output", required=True, help="index file to write")
    build.set_defaults(func=run_build)

    search = add_command(commands, "search", help="search an index file")
    search.add_argument("--index", required=True, help="index file from `hashlearn index build`")
    search.add_argument("--queries", required=True, help="query codes (.npy, packed uint8)")
    mode = search.add_mutually_exclusive_group()
    mode.add_argument("-k", "--k", type=int, default=None, help="neighbours per query (default 10)")
    mode.add_argument("--radius", type=int, default=None, help="all hits within this distance")
    search.add_argument(
        "--mmap",
        action="store_true",
        help="search a flat index from disk in blocks (for stores beyond memory)",
    )
    search.add_argument("--output", default=None, help="hits as JSON (default: print)")
    search.set_defaults(func=run_search)


def _load_npy(path: str, what: str) -> np.ndarray:
    if not Path(path).is_file():
        raise HashlearnFileError(f"{what} file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise HashlearnFileError(
            f"{what} file {path} is not a plain .npy array ({exc}); save it with np.save."
        ) from None


def _codes(path: str, what: str) -> np.ndarray:
    from hashlearn._validation import HashlearnInputError

    codes = _load_npy(path, what)
    if codes.dtype != np.uint8 or codes.ndim != 2:
        raise HashlearnInputError(
            f"{what} file {path} holds a {codes.dtype} array of shape {codes.shape}, not packed "
            "uint8 codes (n, bytes); create it with `hashlearn encode`."
        )
    return codes


def run_build(args: argparse.Namespace) -> int:
    from hashlearn.index import HammingIndex, MIHIndex

    codes = _codes(args.codes, "--codes")
    n_bits = args.bits or 8 * codes.shape[1]
    if args.kind == "mih":
        index = MIHIndex(n_bits, args.n_tables)
    else:
        index = HammingIndex(n_bits)
    if args.ids is None:
        index.add(codes)
    else:
        index.add_with_ids(codes, _load_npy(args.ids, "--ids"))
    index.save(args.output, timeout=0)  # the CLI refuses at once instead of waiting
    log.info(f"wrote a {args.kind} index of {len(index)} {n_bits}-bit codes to {args.output}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    from hashlearn._io import write_json_atomic
    from hashlearn.index import read_index

    index = read_index(args.index, mmap=args.mmap)
    queries = _codes(args.queries, "--queries")
    if args.radius is not None:
        lims, distances, ids = index.range_search(queries, args.radius)
        rows_d = [distances[lims[q] : lims[q + 1]] for q in range(len(queries))]
        rows_i = [ids[lims[q] : lims[q + 1]] for q in range(len(queries))]
        record: dict[str, Any] = {"radius": args.radius}
    else:
        k = 10 if args.k is None else args.k
        distances, ids = index.search(queries, k)
        rows_d, rows_i = list(distances), list(ids)
        record = {"k": k}
    if args.output is None:
        for row, (dist, found) in enumerate(zip(rows_d, rows_i)):
            print(f"{row}\t" + " ".join(f"{i}:{d}" for i, d in zip(found, dist)))
        return 0
    record.update(ids=[r.tolist() for r in rows_i], distances=[r.tolist() for r in rows_d])
    write_json_atomic(args.output, record)
    log.info(f"wrote hits of {len(queries)} queries to {args.output}")
    return 0
