"""Post-hoc quantizers: turn continuous features or embeddings into binary codes."""

from hashlearn.quantize.base import BaseQuantizer
from hashlearn.quantize.sign import SignQuantizer

__all__ = ["BaseQuantizer", "SignQuantizer"]
