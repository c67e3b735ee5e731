"""``hashlearn datasets``: list the registered datasets and whether they are on this machine."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from hashlearn.cli._common import add_command

SPLIT_ORDER = ("train", "val", "query", "database")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "datasets",
        help="list the datasets and where they are available locally",
        description=(
            "List the registered datasets with their classes, size, split protocols and whether "
            "their files are available locally (or how to get them). Your own features can be "
            "used anywhere a dataset name is expected by passing the path of a .npz/.npy/.csv file."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="look for dataset files only in this folder (default: $HASHLEARN_DATA, the user "
        "cache, system packages)",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also read every locally available dataset and verify its checksums (slower; "
        "never downloads)",
    )
    parser.set_defaults(func=run)


def _describe(name: str, data_dir: str | None, verify: bool) -> dict[str, Any]:
    from hashlearn.data import dataset_info

    info = dataset_info(name)
    location = info.locate(data_dir)
    entry: dict[str, Any] = {
        "name": info.name,
        "description": info.description,
        "n_classes": info.n_classes,
        "n_items": info.n_items,
        "item_shape": list(info.item_shape),
        "default_protocol": info.default_protocol,
        "protocols": {
            p.name: {
                "description": p.description,
                "sizes": info.split_sizes(p.name),
                "map_topk": p.map_topk,
            }
            for p in info.protocols.values()
        },
        "available": location is not None,
        "location": location,
        "searched": info.searched(data_dir) if info.searched is not None else [],
        "install_hint": info.install_hint,
    }
    if verify and location is not None:
        from hashlearn._io import HashlearnFileError

        try:
            info.read(data_dir=data_dir, download=False, progress=False)
            entry["verified"] = True
        except HashlearnFileError as exc:
            entry["verified"] = False
            entry["verify_error"] = str(exc)
    return entry


def _wrap(text: str, first: str, rest: str) -> str:
    return textwrap.fill(
        text, 100, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )


def _sizes_text(sizes: dict[str, int]) -> str:
    return " / ".join(f"{k} {sizes[k]}" for k in SPLIT_ORDER if k in sizes)


def _table(entries: list[dict[str, Any]]) -> str:
    header = ("NAME", "CLASSES", "ITEMS", "SHAPE", "DEFAULT PROTOCOL", "LOCAL")
    rows = [header]
    for e in entries:
        local = e["location"] if e["available"] else "not found"
        if "verified" in e:
            local += " (verified)" if e["verified"] else " (VERIFY FAILED)"
        rows.append(
            (
                e["name"],
                str(e["n_classes"] or "-"),
                str(e["n_items"] or "-"),
                "x".join(map(str, e["item_shape"])) or "varies",
                e["default_protocol"],
                local,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    for e in entries:
        lines += ["", f"{e['name']}: {e['description']}"]
        for name, proto in e["protocols"].items():
            default = " (default)" if name == e["default_protocol"] else ""
            cut = proto.get("map_topk")
            map_at = f"mAP@{cut if cut else 'all'}"
            sizes = _sizes_text(proto["sizes"]) or "sizes set by your data"
            lines.append(f"  protocol {name}{default}: {sizes}; {map_at}")
            lines.append(_wrap(proto["description"], "    ", "    "))
        if not e["available"]:
            if e["searched"]:
                lines.append(_wrap(f"looked in: {'; '.join(e['searched'])}", "  ", "    "))
            lines.append(
                _wrap(f"not available locally; to get it: {e['install_hint']}", "  ", "    ")
            )
        if e.get("verify_error"):
            lines.append(f"  verification failed: {e['verify_error']}")
    lines += [
        "",
        "Your own data: pass the path of a .npz (X, y), .npy (with --labels FILE) or .csv file, "
        "a folder of images with one subfolder per class, or a .txt image list "
        "wherever a dataset name is expected.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from hashlearn.data import available_datasets

    entries = [_describe(n, args.data_dir, args.verify) for n in available_datasets()]
    if args.json:
        json.dump(entries, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(_table(entries))
    return 1 if any(e.get("verified") is False for e in entries) else 0
