"""Shallow supervised hashing: SSAH and its baselines (SDH, FSDH, KSH, CCA-ITQ).

Importing this package registers the methods ``"ssah"``, ``"ssah-svd"``, ``"sdh"``,
``"fsdh"``, ``"ksh"`` and ``"cca-itq"`` with :mod:`hashlearn.registry` (numpy / scipy /
scikit-learn only).
"""

from hashlearn.shallow.cca_itq import CCAITQ
from hashlearn.shallow.kernel import AnchorRBF
from hashlearn.shallow.ksh import KSH
from hashlearn.shallow.sdh import FSDH, SDH
from hashlearn.shallow.ssah import SSAH, SSAHSVD

__all__ = ["AnchorRBF", "CCAITQ", "FSDH", "KSH", "SDH", "SSAH", "SSAHSVD"]
