"""``hashlearn encode``: turn features into packed binary codes with a saved model."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from hashlearn.cli._common import add_command

log = logging.getLogger("hashlearn")


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "encode",
        help="encode a features file into packed codes (.npy, uint8)",
        description="Encode features with a model saved by `hashlearn fit` (or a quantizer's "
        ".save()) and write packed codes: uint8, ceil(bits/8) bytes per row, np.packbits order.",
    )
    parser.add_argument("--model", required=True, help="model file (.npz)")
    parser.add_argument("--data", required=True, help="features file (.npz, .npy, .csv)")
    parser.add_argument("--output", required=True, help="codes file to write (.npy)")
    parser.add_argument(
        "--no-csv-labels",
        action="store_true",
        help="a .csv/.tsv --data has no label column (default: its last column is the label)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hashlearn._io import save_npy
    from hashlearn.catalogue import load_model
    from hashlearn.data import read_arrays

    model = load_model(args.model)
    X, _ = read_arrays(args.data, require_labels=False, csv_labels=not args.no_csv_labels)
    codes = model.encode(X)
    save_npy(args.output, codes)
    print(json.dumps({"codes": args.output, "n": len(codes), "bits": int(model.n_bits_)}))
    log.info("wrote %d codes of %d bits to %s", len(codes), model.n_bits_, args.output)
    return 0
