"""Locality-sensitive hashing with random hyperplanes (SimHash; Charikar, STOC 2002).

Bit ``j`` is the side of a random Gaussian hyperplane through the (optionally centred) origin,
so the probability that two items' bits differ is their angle / π: Hamming distance estimates
angular distance without any learning. A data-independent baseline.
"""

from __future__ import annotations

from hashlearn.quantize.sign import SignQuantizer
from hashlearn.registry import register_method


@register_method("lsh")
class LSH(SignQuantizer):
    """Random-hyperplane codes ``sgn((x − mean) W)``, ``W`` i.i.d. standard Gaussian (d, n_bits).

    Args:
        n_bits: code length (default: the input dimension); may exceed the input dimension.
        center: subtract the training mean first (hyperplanes through the data's centre).
        random_state: seed of the hyperplanes.
    """

    projection = "random"
    _parameter_constraints: dict = {
        key: SignQuantizer._parameter_constraints[key]
        for key in ("n_bits", "center", "random_state")
    }

    def __init__(
        self, n_bits: int | None = None, center: bool = True, random_state: int | None = None
    ):
        self.n_bits = n_bits
        self.center = center
        self.random_state = random_state
