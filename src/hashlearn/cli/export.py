"""``hashlearn export``: write a fitted linear quantizer as ``.npy`` arrays or an ONNX graph."""

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
        "export",
        help="export a fitted rotation/projection as .npy arrays or ONNX",
        description="Export a model saved by `hashlearn fit` whose codes are the sign of a "
        "linear map (sign, lsh, pcah, itq, h2q*, random-rotation, cca-itq), so that "
        "np.packbits((X - mean) @ W > 0, axis=1) reproduces `hashlearn encode` outside "
        "hashlearn. --format npy writes a folder (mean.npy, projection.npy, export.json); "
        "--format onnx writes one .onnx file with inputs x (n, d) float32 and outputs "
        "codes (n, bytes) uint8 and projections (n, bits) float32.",
    )
    parser.add_argument("--model", required=True, help="model file (.npz)")
    parser.add_argument("--format", required=True, choices=("npy", "onnx"), help="what to write")
    parser.add_argument("--output", required=True, help="folder (npy) or file (.onnx) to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hashlearn.catalogue import load_model
    from hashlearn.export import export_model

    summary = export_model(load_model(args.model), args.format, args.output)
    print(json.dumps(summary))
    log.info("exported %s (%d bits) to %s", summary["method"], summary["n_bits"], args.output)
    return 0
