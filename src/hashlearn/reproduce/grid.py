"""Expand a checked config into its cells: one fit (or training run) and evaluation each."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cell:
    """One point of the grid.

    Attributes:
        kind: ``"shallow"`` or ``"deep"``.
        block: index of the ``[[shallow]]`` / ``[[deep]]`` block it comes from.
        method: the shallow method, or the deep similarity loss.
        quantization: the deep quantization strategy (``""`` for shallow methods).
        bits, seed, label_noise: code length, seed, share of flipped training labels.
        label: the block's label (distinguishes variants such as H2Q's rotation losses).
        dataset: the dataset table (the config's, updated by the block's).
        options: the shallow method's parameters or the deep TrainConfig fields.
        keep_embeddings: number of query embeddings stored with the result (deep only).
    """

    kind: str
    block: int
    method: str
    quantization: str
    bits: int
    seed: int
    label_noise: float
    label: str
    dataset: dict = field(hash=False, compare=False)
    options: dict = field(hash=False, compare=False)
    keep_embeddings: int = 0

    @property
    def name(self) -> str:
        """Row name in the report: ``itq``, ``dpsh+hswd``, ``dpsh+h2q[l1]``."""
        base = self.method if self.kind == "shallow" else f"{self.method}+{self.quantization}"
        return f"{base}[{self.label}]" if self.label else base

    @property
    def key(self) -> str:
        """Identity of the cell in ``results.jsonl`` (stable across runs of one config)."""
        return json.dumps(
            [self.kind, self.block, self.name, self.bits, self.seed, self.label_noise],
            separators=(",", ":"),
        )

    @property
    def slug(self) -> str:
        """File-system-safe name (for the deep run directory)."""
        text = f"{self.kind}{self.block}-{self.name}-{self.bits}b-s{self.seed}-n{self.label_noise}"
        return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in text)

    def describe(self) -> dict[str, Any]:
        return {
            "cell": self.key,
            "kind": self.kind,
            "block": self.block,
            "name": self.name,
            "method": self.method,
            "quantization": self.quantization,
            "label": self.label,
            "bits": self.bits,
            "seed": self.seed,
            "label_noise": self.label_noise,
        }


def _options(kind: str, method: str, options: dict) -> dict:
    """A deep block's TrainConfig fields; a shallow method's parameters: the block's flat
    ``params`` the method takes, updated by ``params.<method>``."""
    if kind == "deep":
        return options
    from hashlearn.catalogue import method_parameters

    own = set(method_parameters(method))
    flat = {k: v for k, v in options.items() if k in own and not isinstance(v, dict)}
    return {**flat, **options.get(method, {})}


def expand(config: dict) -> list[Cell]:
    """Every cell of ``config``, in run order: block by block, then bits, method, seed."""
    cells: list[Cell] = []
    for kind in ("shallow", "deep"):
        for index, block in enumerate(config[kind]):
            dataset = {**config["dataset"], **block["dataset"]}
            noises = dataset.get("label_noise", [0.0])
            methods = block["methods"] if kind == "shallow" else block["losses"]
            quants = [""] if kind == "shallow" else block["quantization"]
            options = block["params"] if kind == "shallow" else block["train"]
            for noise in noises:
                for bits in block["bits"]:
                    for method in methods:
                        for quant in quants:
                            for seed in block["seeds"]:
                                cells.append(
                                    Cell(
                                        kind=kind,
                                        block=index,
                                        method=method,
                                        quantization=quant,
                                        bits=bits,
                                        seed=seed,
                                        label_noise=noise,
                                        label=block["label"],
                                        dataset=dataset,
                                        options=_options(kind, method, options),
                                        keep_embeddings=block.get("keep_embeddings", 0),
                                    )
                                )
    keys = [c.key for c in cells]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        from hashlearn._validation import HashlearnInputError

        raise HashlearnInputError(
            f"config lists the same cell twice ({duplicates[0]}); remove the repeated "
            "method, loss, quantization or bit length from its block."
        )
    return cells
