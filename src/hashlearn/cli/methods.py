"""``hashlearn methods`` (alias ``hashlearn list``): every name the other commands accept.

Lists the registered hashing methods, deep similarity losses, quantization strategies,
backbones, training recipes, datasets and split protocols, each with one line of description
taken from its own documentation (a class docstring's first line, or the entry of its module's
docstring).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from types import ModuleType

from hashlearn.cli._common import add_command, missing_optional

DEEP_INSTALL = "needs PyTorch: pip install 'hashlearn[deep]'"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "methods",
        aliases=["list"],
        help="list every method, deep loss, quantization, backbone, dataset and protocol",
        description=(
            "List every name the other commands accept, with a one-line description: hashing "
            "methods (evaluate/fit --method), deep similarity losses, quantization strategies "
            "and backbones (train --loss/--quantization/--backbone), datasets (--dataset) and "
            "their split protocols (--protocol)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=run)


def plain(text: str) -> str:
    """Docstring markup to terminal text: ``:class:`H2Q``` -> ``H2Q``, ````x```` -> ``x``."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


def first_sentence(text: str) -> str:
    """Text up to the first full stop that ends a sentence ("et al. 2022" does not)."""
    match = re.search(r"\.(?=\s+[A-Z(]|$)", text)
    return text[: match.end()] if match else text


def module_entries(module: ModuleType) -> dict[str, str]:
    """Names documented in a module docstring, each with the first sentence of its entry.

    Reads the two layouts our module docstrings use: a definition list (````name```` alone on
    a line, its text indented below) and bullets (``* ``a``, ``b`` — text``, continued on
    indented lines).
    """
    entries: dict[str, str] = {}
    names: list[str] = []
    text: list[str] = []

    def close() -> None:
        for name in names:
            entries[name] = plain(first_sentence(" ".join(text)))
        names.clear()
        text.clear()

    for line in (module.__doc__ or "").splitlines():
        term = re.fullmatch(r"``([\w-]+)``", line.strip())
        bullet = re.match(r"\s*\*\s+((?:``[\w-]+``,?\s*)+)\s*[—-]+\s*(.*)", line)
        if term or bullet:
            close()
            names.extend([term.group(1)] if term else re.findall(r"``([\w-]+)``", bullet.group(1)))
            text.extend([] if term else [bullet.group(2).strip()])
        elif names and line.startswith((" ", "\t")) and line.strip():
            text.append(line.strip())
        else:
            close()
    close()
    return entries


def _section(title: str, usage: str, rows: list[tuple[str, str]]) -> dict:
    return {
        "title": title,
        "usage": usage,
        "entries": [{"name": n, "description": d} for n, d in rows],
    }


def shallow_sections() -> list[dict]:
    """Hashing methods, datasets and protocols (no PyTorch needed)."""
    from hashlearn.catalogue import available_methods, method_description
    from hashlearn.data import available_datasets, dataset_info

    methods = [(m, plain(method_description(m))) for m in available_methods()]
    datasets = [(d, dataset_info(d).description) for d in available_datasets()]
    protocols = [
        (f"{d}/{p.name}" + (" (default)" if p.name == dataset_info(d).default_protocol else ""),
         p.description)
        for d in available_datasets()
        for p in dataset_info(d).protocols.values()
    ]  # fmt: skip
    return [
        _section("hashing methods", "hashlearn evaluate|fit --method NAME", methods),
        _section("datasets", "--dataset NAME (or a features file)", datasets),
        _section("split protocols (dataset/protocol)", "--protocol NAME", protocols),
    ]


def deep_sections() -> list[dict]:
    """Deep similarity losses, quantization strategies and backbones (PyTorch)."""
    from hashlearn.catalogue import first_line
    from hashlearn.deep import backbones, losses, quantization
    from hashlearn.deep.config import RECIPES, available_recipes
    from hashlearn.deep.losses.base import _LOSSES

    loss_rows = [(n, plain(first_line(_LOSSES[n].__doc__))) for n in losses.available_losses()]
    quant_doc = module_entries(quantization)
    backbone_doc = module_entries(backbones)
    return [
        _section("deep similarity losses", "hashlearn train --loss NAME", loss_rows),
        _section(
            "quantization strategies",
            "hashlearn train --quantization NAME",
            [(n, quant_doc.get(n, "")) for n in quantization.QUANTIZATIONS],
        ),
        _section(
            "backbones",
            "hashlearn train --backbone NAME",
            [(n, backbone_doc.get(n, "")) for n in backbones.BACKBONES],
        ),
        _section(
            "training recipes (settings: hashlearn train --help)",
            "hashlearn train --recipe NAME",
            [(n, RECIPES[n]["summary"]) for n in available_recipes()],
        ),
    ]


def all_sections() -> list[dict]:
    """Every section; the deep ones say how to install PyTorch when it is missing."""
    sections = shallow_sections()
    try:
        deep = deep_sections()
    except ModuleNotFoundError as exc:
        if not missing_optional(exc):
            raise
        deep = [_section("deep hashing (losses, quantization, backbones)", DEEP_INSTALL, [])]
    return sections[:1] + deep + sections[1:]


def _text(sections: list[dict]) -> str:
    out: list[str] = []
    for section in sections:
        out.append(f"{section['title']}  ({section['usage']})")
        width = max([len(e["name"]) for e in section["entries"]] + [0])
        for entry in section["entries"]:
            out.append(f"  {entry['name'].ljust(width)}  {entry['description']}".rstrip())
        out.append("")
    return "\n".join(out).rstrip()


def run(args: argparse.Namespace) -> int:
    sections = all_sections()
    if args.json:
        json.dump(sections, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(_text(sections))
    return 0
