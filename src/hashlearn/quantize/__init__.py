"""Post-hoc quantizers: turn continuous features or embeddings into binary codes.

- :class:`SignQuantizer` (``"sign"``): sign of centred, optionally projected features.
- :class:`LSH` (``"lsh"``), :class:`PCAHash` (``"pcah"``): data-independent and PCA baselines.
- :class:`ITQ` (``"itq"``): iterative quantization (Gong & Lazebnik).
- :class:`H2Q` (``"h2q"``, ``"h2q-l1"``, ``"h2q-min-entry"``, ``"h2q-bit-var"``): Householder
  quantization (Schwengber et al.), with the paper's SGD and a fast Riemannian solver.
- :class:`RandomRotation` (``"random-rotation"``): a random rotation before sign, as a control.
"""

from hashlearn.quantize.h2q import H2Q, H2QL1, H2QBitVar, H2QMinEntry
from hashlearn.quantize.itq import ITQ
from hashlearn.quantize.losses import LOSSES, loss_and_grad, quantization_loss
from hashlearn.quantize.lsh import LSH
from hashlearn.quantize.pca_hash import PCAHash
from hashlearn.quantize.rotation import RandomRotation, RotationQuantizer
from hashlearn.quantize.sign import SignQuantizer

__all__ = [
    "SignQuantizer",
    "LSH",
    "PCAHash",
    "ITQ",
    "H2Q",
    "H2QL1",
    "H2QMinEntry",
    "H2QBitVar",
    "RandomRotation",
    "RotationQuantizer",
    "LOSSES",
    "loss_and_grad",
    "quantization_loss",
]
