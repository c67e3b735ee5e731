"""Image towers of timm and open_clip as backbones, by name: ``timm:NAME``
(``timm:vit_base_patch16_224``) and ``open_clip:NAME`` (``open_clip:ViT-B-32``, optionally
``open_clip:ViT-B-32@laion2b_s34b_b79k`` for a pretrained tag).

Optional extras (``pip install hashlearn[timm]`` / ``hashlearn[open-clip]``). ``weights``
follows :func:`hashlearn.deep.backbones.build_backbone`: None loads the library's pretrained
weights (timm's default for the model; open_clip's tag, by default the model's first listed
one) through the Hugging Face cache, offline when ``download`` is False; ``"none"`` is a random
initialisation (tests, offline machines); a path is a local weights file. Each tower's own
normalisation (its pretrained config's mean and std; CLIP's for open_clip) is applied inside the
wrapper, like the ImageNet statistics of the torchvision networks.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.deep.pretrained import PretrainedImageNet

PREFIXES = ("timm:", "open_clip:")


def is_tower(name: str) -> bool:
    """Whether ``name`` names a timm or open_clip tower."""
    return isinstance(name, str) and name.startswith(PREFIXES) and len(name.split(":", 1)[1]) > 0


@contextmanager
def _offline(download: bool):
    """Hugging Face Hub offline mode inside the block unless downloads are allowed."""
    if download:
        yield
        return
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:  # huggingface_hub reads the variable once, at import: switch its constant too
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - timm and open_clip depend on it
        constants = None
    was = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if constants is not None:
            constants.HF_HUB_OFFLINE = was
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def _import(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        package = {"timm": "timm", "open-clip": "open_clip_torch"}[extra]
        raise HashlearnInputError(
            f"this backbone needs the Python package {package!r}; install it with "
            f"`pip install hashlearn[{extra}]`."
        ) from None


def _random(weights: Any) -> bool:
    return weights is not None and str(weights).lower() in ("none", "random")


def _fail(name: str, exc: Exception, download: bool) -> HashlearnFileError:
    hint = "" if download else " (downloads are off: `download=False`)"
    detail = " ".join(str(exc).split())[:200]
    return HashlearnFileError(
        f"could not build backbone {name!r}{hint}: {type(exc).__name__}: {detail}; pass a "
        "local weights file as `weights`, 'none' for random weights, or allow downloads."
    )


def build_tower(name: str, weights: Any = None, download: bool = True) -> nn.Module:
    """The image tower ``name`` (``timm:...`` or ``open_clip:...``) wrapped as a backbone
    (:class:`hashlearn.deep.pretrained.PretrainedImageNet`: flat features, ``out_features``)."""
    library, model = name.split(":", 1)
    if weights is not None and not _random(weights) and not Path(weights).is_file():
        raise HashlearnFileError(f"`weights` file {weights} for backbone {name!r} does not exist.")
    if library == "timm":
        timm = _import("timm", "timm")
        kwargs: dict[str, Any] = {"pretrained": not _random(weights), "num_classes": 0}
        if weights is not None and not _random(weights):
            kwargs["pretrained_cfg_overlay"] = {"file": str(weights)}
        try:
            with _offline(download):
                net = timm.create_model(model, **kwargs)
        except RuntimeError as exc:
            if "Unknown model" in str(exc):
                raise HashlearnInputError(f"timm has no model {model!r} ({exc}).") from None
            raise _fail(name, exc, download) from None
        except Exception as exc:  # hub / file errors differ by version: all name the model
            raise _fail(name, exc, download) from None
        cfg = getattr(net, "pretrained_cfg", {}) or {}
        mean, std = cfg.get("mean", (0.485, 0.456, 0.406)), cfg.get("std", (0.229, 0.224, 0.225))
        return PretrainedImageNet(
            net, int(net.num_features), mean=mean, std=std, reloadable=not _random(weights),
            name=name,
        )  # fmt: skip
    open_clip = _import("open_clip", "open-clip")
    arch, _, tag = model.partition("@")
    if arch not in open_clip.list_models():
        raise HashlearnInputError(f"open_clip has no model {arch!r}; see open_clip.list_models().")
    if _random(weights):
        pretrained = None
    elif weights is not None:
        pretrained = str(weights)
    else:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        pretrained = tag or (tags[0] if tags else None)
    try:
        with _offline(download):
            clip = open_clip.create_model(arch, pretrained=pretrained)
    except Exception as exc:  # hub / file errors differ by version: all name the model
        raise _fail(name, exc, download) from None
    visual = clip.visual
    mean = getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
    std = getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
    return PretrainedImageNet(
        visual, int(visual.output_dim), mean=mean, std=std, reloadable=pretrained is not None,
        name=name,
    )  # fmt: skip
