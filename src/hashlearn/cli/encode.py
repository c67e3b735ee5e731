"""``hashlearn encode``: turn features into packed binary codes with a saved model."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="encode a features file into packed codes (.npy, uint8)",
        description="Encode features with a model saved by `hashlearn fit` (or a quantizer's "
        ".save()) and write packed codes: uint8, ceil(bits/8) bytes per row, np.packbits order.",
    )
    parser.add_argument("--model", required=True, help="model file (.npz)")
    parser.add_argument("--data", required=True, help="features file (.npz, .npy, .csv)")
    parser.add_argument("--output", required=True, help="codes file to write (.npy)")
    parser.add_argument("--quiet", action="store_true", help="no logs on stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from hashlearn._io import atomic_path
    from hashlearn.catalogue import load_model
    from hashlearn.data import read_arrays

    model = load_model(args.model)
    X, _ = read_arrays(args.data, require_labels=False)
    codes = model.encode(X)
    with atomic_path(args.output) as tmp, open(tmp, "wb") as handle:
        np.save(handle, codes)
    print(json.dumps({"codes": args.output, "n": len(codes), "bits": int(model.n_bits_)}))
    if not args.quiet:
        print(f"wrote {len(codes)} codes of {model.n_bits_} bits to {args.output}", file=sys.stderr)
    return 0
