"""Every named choice of hashlearn, one table each, and the evaluation defaults, written once.

The metrics, the Python API's defaults, the CLI's ``choices`` and the checks of a
``hashlearn reproduce`` config all import these tables, so a value accepted in one place is
accepted in all (a test holds them equal). This module imports nothing, so every layer may
import it.
"""

from __future__ import annotations

from types import MappingProxyType

#: How items at equal Hamming distance are ordered (:mod:`hashlearn.metrics`): ``stable`` by
#: database id; ``aware`` the expectation over all orders of tied items; ``continuous`` by
#: the distance of the continuous embeddings, then id (the H²Q authors' rule).
TIES = ("stable", "aware", "continuous")
#: What a query with no relevant database item counts for in a mean: left out (``skip``) or
#: scored 0 and kept (``zero``, DeepHash-pytorch's ``CalcTopMap``).
NO_RELEVANT = ("skip", "zero")
#: The named mAP cut-offs: the dataset protocol's own, or the whole database; a positive
#: integer is accepted beside them.
TOPK_RULES = ("protocol", "all")

#: Defaults of an evaluation, for the Python API, ``hashlearn evaluate`` and reproduction
#: configs alike (``topk="protocol"`` where a dataset is known; the metrics, which see only
#: codes, default to the whole database).
DEFAULT_TOPK = "protocol"
DEFAULT_K = 100
DEFAULT_TIES = "stable"
DEFAULT_RADIUS = 2
DEFAULT_NO_RELEVANT = "skip"
EVALUATION_DEFAULTS = MappingProxyType(
    {
        "topk": DEFAULT_TOPK,
        "k": DEFAULT_K,
        "ties": DEFAULT_TIES,
        "radius": DEFAULT_RADIUS,
        "no_relevant": DEFAULT_NO_RELEVANT,
    }
)

#: Quantization strategies of a deep run (:mod:`hashlearn.deep.quantization`).
QUANTIZATIONS = ("none", "penalty", "hswd", "swd", "h2q", "itq", "itq-centred")
#: The two-stage strategies (a rotation fitted after training, :mod:`hashlearn.deep.two_stage`)
#: and the file of the run directory that holds the fitted rotation.
TWO_STAGE = MappingProxyType({"h2q": "h2q.npz", "itq": "itq.npz", "itq-centred": "itq.npz"})

#: ImageNet-pretrained backbones (:mod:`hashlearn.deep.backbones`) and every backbone.
PRETRAINED_BACKBONES = ("alexnet", "vgg16", "resnet50", "efficientnet-lite0")
BACKBONES = ("cnn", "mlp", *PRETRAINED_BACKBONES)
