"""Shallow supervised hashing: SSAH and the baselines it is compared with (SDH, FSDH, CCA-ITQ).

Importing this package registers the methods ``"ssah"``, ``"ssah-svd"``, ``"sdh"``, ``"fsdh"``
and ``"cca-itq"`` with :mod:`hashlearn.registry` (numpy / scipy / scikit-learn only).
"""

from hashlearn.shallow.cca_itq import CCAITQ
from hashlearn.shallow.kernel import AnchorRBF
from hashlearn.shallow.sdh import FSDH, SDH
from hashlearn.shallow.ssah import SSAH, SSAHSVD

__all__ = ["AnchorRBF", "CCAITQ", "FSDH", "SDH", "SSAH", "SSAHSVD"]
