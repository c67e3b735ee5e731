"""The TOML file that describes a reproduction grid, parsed and checked before anything runs.

A config names one dataset (with optional frozen-backbone features, per-split caps, a class
subset and label noise), the evaluation cut-offs, the seeds, and blocks of cells::

    title = "H2Q on CIFAR-10"
    paper = "h2q"                 # print this paper's published table beside ours
    seeds = [0, 1, 2]

    [dataset]
    name = "cifar10"
    protocol = "h2q"

    [evaluation]
    topk = "protocol"             # the protocol's mAP cut-off; or "all", or a number

    [[shallow]]                   # methods x bits x seeds
    methods = ["itq", "h2q"]
    bits = [16, 32]

    [[deep]]                      # losses x quantization x bits x seeds
    losses = ["hyp2", "dch"]
    quantization = ["none", "h2q"]
    bits = [16, 32, 48, 64]
    train = { backbone = "mlp", epochs = 20 }

Every key is checked: an unknown key names where it is, the keys allowed there and the closest
match; a value outside its choices lists them. :func:`config_hash` fingerprints what defines
the results (not where the data lives or which device trains), so a results file written by
another config is recognised and refused.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.reproduce.revisions import revisions_of
from hashlearn.vocab import (
    DEFAULT_NO_RELEVANT,
    EVALUATION_DEFAULTS,
    NO_RELEVANT,
    PRETRAINED_BACKBONES,
    QUANTIZATIONS,
    TIES,
    TOPK_RULES,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PAPERS = ("h2q", "hswd", "ssah")
TOP_KEYS = {"title", "paper", "seeds", "dataset", "evaluation", "shallow", "deep", "report"}
DATASET_KEYS = {
    "name",
    "protocol",
    "split_seed",
    "data_dir",
    "features",
    "image_size",
    "max_items",
    "classes",
    "label_noise",
}
SPLITS = ("train", "val", "query", "database")
EVALUATION_KEYS = set(EVALUATION_DEFAULTS)
SHALLOW_KEYS = {"methods", "bits", "params", "label", "dataset", "seeds"}
DEEP_KEYS = {
    "losses",
    "quantization",
    "bits",
    "train",
    "label",
    "dataset",
    "seeds",
    "keep_embeddings",
}
REPORT_KEYS = {"pairs"}
# Paired differences reported by default: (better, baseline) quantization strategies of the
# deep grid (H2Q against the lambda = 0 network and against post-hoc ITQ; HSWD against the
# method's own penalty) and the shallow H2Q against ITQ.
DEFAULT_PAIRS = (("h2q", "none"), ("hswd", "penalty"), ("h2q", "itq"), ("swd", "penalty"))
# Not part of what the results depend on: left out of the config hash.
LOCATION_KEYS = ("data_dir",)
LOCATION_TRAIN_KEYS = ("device",)


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_keys(table: dict, allowed: set[str], path: str) -> None:
    """Refuse keys of ``table`` outside ``allowed``, naming the key, the allowed keys and the
    closest one."""
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise HashlearnInputError(
                f"unknown config key {_where(path, key)!r}{hint}; allowed keys "
                f"{'in [' + path + ']' if path else 'at the top level'}: "
                f"{', '.join(sorted(allowed))}."
            )


def check_value_choice(value: Any, allowed: list[str] | tuple[str, ...], where: str) -> str:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), list(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise HashlearnInputError(
            f"config {where} = {value!r} is not allowed{hint}; choose one of: "
            f"{', '.join(map(str, allowed))}."
        )
    return value


def _list(value: Any, where: str, kind: type, *, allow_scalar: bool = True) -> list:
    if allow_scalar and isinstance(value, kind) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise HashlearnInputError(f"config {where} must be a non-empty list, got {value!r}.")
    for item in value:
        if not isinstance(item, kind) or isinstance(item, bool):
            raise HashlearnInputError(
                f"config {where} must hold {kind.__name__} values, got {item!r}."
            )
    return list(value)


def _bits(value: Any, where: str) -> list[int]:
    bits = _list(value, where, int)
    for b in bits:
        if not 1 <= b <= 4096:
            raise HashlearnInputError(f"config {where} holds {b}; code lengths are 1..4096.")
    return bits


def _seeds(value: Any, where: str) -> list[int]:
    seeds = _list(value, where, int)
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise HashlearnInputError(f"config {where} must be distinct non-negative integers.")
    return seeds


def _dataset(table: Any, path: str, *, partial: bool) -> dict:
    if not isinstance(table, dict):
        raise HashlearnInputError(f"config [{path}] must be a table, got {table!r}.")
    check_keys(table, DATASET_KEYS, path)
    out = dict(table)
    if not partial and "name" not in out:
        raise HashlearnInputError(
            f'config [{path}] needs a name (e.g. name = "fashion-mnist"); '
            "`hashlearn datasets` lists them."
        )
    if "name" in out:
        from hashlearn.data import available_datasets

        name = out["name"]
        if not isinstance(name, str) or (
            name not in available_datasets() and os.sep not in name and not Path(name).suffix
        ):
            raise HashlearnInputError(
                f"config {path}.name = {name!r} is not a dataset; choose one of: "
                f"{', '.join(available_datasets())}, or give the path of a features file."
            )
    if "max_items" in out:
        caps = out["max_items"]
        if not isinstance(caps, dict):
            raise HashlearnInputError(f"config {path}.max_items must be a table of split = n.")
        check_keys(caps, set(SPLITS), f"{path}.max_items")
        for split, n in caps.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise HashlearnInputError(
                    f"config {path}.max_items.{split} must be a positive integer, got {n!r}."
                )
    if "classes" in out:
        out["classes"] = _list(out["classes"], f"{path}.classes", int, allow_scalar=False)
    if "label_noise" in out:
        noise = out["label_noise"]
        noise = [noise] if isinstance(noise, (int, float)) else noise
        if not isinstance(noise, list) or not noise:
            raise HashlearnInputError(f"config {path}.label_noise must be a number or a list.")
        for rate in noise:
            if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate < 1:
                raise HashlearnInputError(
                    f"config {path}.label_noise holds {rate!r}; use fractions in [0, 1) "
                    "(0.3 flips 30 % of the training labels)."
                )
        out["label_noise"] = [float(r) for r in noise]
    if "split_seed" in out and (not isinstance(out["split_seed"], int) or out["split_seed"] < 0):
        raise HashlearnInputError(f"config {path}.split_seed must be a non-negative integer.")
    size = out.get("image_size", 224)
    if not isinstance(size, int) or isinstance(size, bool) or not 32 <= size <= 1024:
        raise HashlearnInputError(f"config {path}.image_size must be an integer in 32..1024.")
    if "features" in out:
        check_value_choice(out["features"], PRETRAINED_BACKBONES, f"{path}.features")
    return out


def _evaluation(table: Any) -> dict:
    out = dict(EVALUATION_DEFAULTS)
    if not isinstance(table, dict):
        raise HashlearnInputError("config [evaluation] must be a table.")
    check_keys(table, EVALUATION_KEYS, "evaluation")
    out.update(table)
    topk = out["topk"]
    if not (topk in TOPK_RULES or (isinstance(topk, int) and topk > 0)):
        raise HashlearnInputError(
            f'config evaluation.topk = {topk!r}; use "protocol" (the dataset protocol\'s '
            'mAP cut-off), "all" or a positive integer.'
        )
    check_value_choice(out["ties"], TIES, "evaluation.ties")
    check_value_choice(out["no_relevant"], NO_RELEVANT, "evaluation.no_relevant")
    for key in ("k", "radius"):
        if not isinstance(out[key], int) or out[key] < 0:
            raise HashlearnInputError(f"config evaluation.{key} must be a non-negative integer.")
    return out


def _block_names(
    block: Any, path: str, kind: str, keys: Any, field: str, choices: Any
) -> list[str]:
    """Check a ``[[shallow]]`` / ``[[deep]]`` table's keys and return its validated names
    (``methods`` or ``losses``); both that field and ``bits`` are required."""
    if not isinstance(block, dict):
        raise HashlearnInputError(f"config [[{kind}]] entries must be tables ({path}).")
    check_keys(block, keys, path)
    for key in (field, "bits"):
        if key not in block:
            raise HashlearnInputError(f"config {path} needs {key} = [...].")
    names = _list(block[field], f"{path}.{field}", str)
    for name in names:
        check_value_choice(name, choices, f"{path}.{field}")
    return names


def _shallow(block: Any, path: str, seeds: list[int]) -> dict:
    from hashlearn.catalogue import available_methods, method_parameters

    methods = _block_names(block, path, "shallow", SHALLOW_KEYS, "methods", available_methods())
    params = block.get("params", {})
    if not isinstance(params, dict):
        raise HashlearnInputError(f"config {path}.params must be a table.")
    taken = {m: set(method_parameters(m)) - {"n_bits", "random_state"} for m in methods}
    for key, value in params.items():
        if key in methods and isinstance(value, dict):  # parameters of one method
            check_keys(value, taken[key], f"{path}.params.{key}")
        elif not any(key in names for names in taken.values()):
            check_keys({key: None}, set().union(*taken.values()), f"{path}.params")
    return {
        "methods": methods,
        "bits": _bits(block["bits"], f"{path}.bits"),
        "params": params,
        "label": str(block.get("label", "")),
        "dataset": _dataset(block.get("dataset", {}), f"{path}.dataset", partial=True),
        "seeds": _seeds(block["seeds"], f"{path}.seeds") if "seeds" in block else seeds,
    }


def _deep(block: Any, path: str, seeds: list[int]) -> dict:
    import dataclasses

    from hashlearn.deep import TrainConfig, available_losses

    losses = _block_names(block, path, "deep", DEEP_KEYS, "losses", available_losses())
    quant = _list(block.get("quantization", ["none"]), f"{path}.quantization", str)
    for q in quant:
        check_value_choice(q, QUANTIZATIONS, f"{path}.quantization")
    train = block.get("train", {})
    if not isinstance(train, dict):
        raise HashlearnInputError(f"config {path}.train must be a table of TrainConfig fields.")
    fixed = {"loss", "n_bits", "quantization", "seed", "recipe_applied"}
    allowed = {f.name for f in dataclasses.fields(TrainConfig)} - fixed
    check_keys(train, allowed, f"{path}.train")
    keep = block.get("keep_embeddings", 0)
    if not isinstance(keep, int) or keep < 0:
        raise HashlearnInputError(f"config {path}.keep_embeddings must be an integer >= 0.")
    return {
        "losses": losses,
        "quantization": quant,
        "bits": _bits(block["bits"], f"{path}.bits"),
        "train": train,
        "label": str(block.get("label", "")),
        "dataset": _dataset(block.get("dataset", {}), f"{path}.dataset", partial=True),
        "seeds": _seeds(block["seeds"], f"{path}.seeds") if "seeds" in block else seeds,
        "keep_embeddings": keep,
    }


def parse_config(raw: dict) -> dict:
    """Check a parsed TOML document and return the normalised config (defaults filled in)."""
    if not isinstance(raw, dict):
        raise HashlearnInputError("a reproduction config must be a TOML table.")
    check_keys(raw, TOP_KEYS, "")
    if "dataset" not in raw:
        raise HashlearnInputError("config needs a [dataset] table with a name.")
    seeds = _seeds(raw.get("seeds", [0]), "seeds")
    paper = raw.get("paper")
    if paper is not None:
        check_value_choice(paper, PAPERS, "paper")
    shallow = raw.get("shallow", [])
    deep = raw.get("deep", [])
    if not isinstance(shallow, list) or not isinstance(deep, list):
        raise HashlearnInputError("config shallow / deep must be arrays of tables ([[shallow]]).")
    if not shallow and not deep:
        raise HashlearnInputError("config has no [[shallow]] or [[deep]] block: nothing to run.")
    report = raw.get("report", {})
    check_keys(report, REPORT_KEYS, "report")
    pairs = report.get("pairs", [list(p) for p in DEFAULT_PAIRS])
    if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise HashlearnInputError("config report.pairs must be [[better, baseline], ...].")
    return {
        "title": str(raw.get("title", "")),
        "paper": paper,
        "seeds": seeds,
        "dataset": _dataset(raw["dataset"], "dataset", partial=False),
        "evaluation": _evaluation(raw.get("evaluation", {})),
        "shallow": [_shallow(b, f"shallow[{i}]", seeds) for i, b in enumerate(shallow)],
        "deep": [_deep(b, f"deep[{i}]", seeds) for i, b in enumerate(deep)],
        "report": {"pairs": pairs},
    }


def load_config(path: str | os.PathLike) -> dict:
    """Read and check a reproduction config file (TOML)."""
    path = Path(path)
    if not path.is_file():
        raise HashlearnFileError(f"config file {path} does not exist.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise HashlearnInputError(f"{path} is not valid TOML: {exc}.") from None
    return parse_config(raw)


def config_hash(config: dict) -> str:
    """SHA-256 of what defines the results: the config without data locations and devices
    (and the revisions of :mod:`hashlearn.reproduce.revisions` that apply to it)."""
    core = copy.deepcopy(config)
    revisions = revisions_of(config)
    if revisions:
        core["revisions"] = revisions
    for section in [core["dataset"], *(b["dataset"] for b in core["shallow"] + core["deep"])]:
        for key in LOCATION_KEYS:
            section.pop(key, None)
    for block in core["deep"]:
        for key in LOCATION_TRAIN_KEYS:
            block["train"].pop(key, None)
    if core["evaluation"].get("no_relevant") == DEFAULT_NO_RELEVANT:
        # Added after results folders existed: at its default it leaves their hash as it was.
        core["evaluation"].pop("no_relevant")
    core.pop("title", None)
    core.pop("report", None)
    core.pop("paper", None)
    text = json.dumps(core, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
