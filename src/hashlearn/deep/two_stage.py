"""Stage two of the two-stage strategies: a rotation fitted on a trained network's embeddings.

``h2q`` (Schwengber et al., arXiv 2311.04207): :class:`hashlearn.quantize.H2Q` with the chosen
solver (``fast``, or the paper's ``sgd``) and quantization loss; ``itq``: the paper's post-hoc
baseline, :class:`hashlearn.quantize.ITQ` on the same embeddings. Both are fitted on the
training embeddings of the λ = 0 network (stage one) and applied before taking signs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from hashlearn._validation import HashlearnInputError
from hashlearn.deep.config import TrainConfig
from hashlearn.quantize import H2Q, ITQ
from hashlearn.vocab import TWO_STAGE

log = logging.getLogger("hashlearn")

#: Strategy → the run directory's file of the fitted rotation (the table of hashlearn.vocab).
ROTATION_FILES = TWO_STAGE


def rotation_class(quantization: str) -> type:
    """The quantizer class of a two-stage strategy (``h2q`` or ``itq``)."""
    return {"h2q": H2Q, "itq": ITQ}[quantization]


def build_rotation(quantization: str, n_bits: int, *, loss: str, solver: str, seed: int) -> Any:
    """An unfitted H²Q (``loss``, ``solver``) or ITQ quantizer seeded with ``seed``."""
    cls = rotation_class(quantization)
    if quantization == "h2q":
        return cls(n_bits, loss=loss, solver=solver, random_state=seed)
    return cls(n_bits, random_state=seed)


def fit_rotation(quantizer: Any, z: np.ndarray, seed: int) -> tuple[Any, list[int]]:
    """Fit ``quantizer`` on the embeddings ``z`` (n, k); also return the constant columns.

    A constant embedding column (a bit the network left unused) carries no information, and
    the rotation quantizers refuse such a column in raw features. A rotation of the embedding
    space still mixes it with the others, so then the quantizer is fitted on ``z Q`` for a
    seeded random orthogonal ``Q`` (no column of ``z Q`` is constant unless all rows of ``z``
    are equal), and ``Q`` is folded into the fitted rotation (``R ← Q R``, ``mean ← mean Qᵀ``),
    which is exact: row rescaling and centring commute with ``Q``.
    """
    constant = [int(j) for j in np.flatnonzero(np.ptp(z, axis=0) == 0)]
    if not constant:
        return quantizer.fit(z), constant
    if np.ptp(z, axis=0).max() == 0:
        raise HashlearnInputError(
            "every training embedding is identical (the network collapsed to one code), so no "
            "rotation can be fitted; lower the learning rate or check the loss and the inputs."
        )
    log.warning(
        "%d constant embedding column(s) (%s); fitting the rotation in a randomly rotated frame",
        len(constant),
        constant[:5],
    )
    gen = np.random.default_rng(seed)
    q, r = np.linalg.qr(gen.standard_normal((z.shape[1], z.shape[1])))
    q = q * np.sign(np.diag(r))  # Haar-distributed
    quantizer.fit((z.astype(np.float64) @ q).astype(z.dtype))
    quantizer.rotation_ = q @ quantizer.rotation_
    if getattr(quantizer, "mean_", None) is not None:
        quantizer.mean_ = quantizer.mean_ @ q.T
    return quantizer, constant


def fit_stage_two(config: TrainConfig, z: np.ndarray) -> tuple[Any, dict]:
    """The rotation of ``config`` (``quantization``: ``h2q`` or ``itq``; ``h2q_loss``,
    ``h2q_solver``, ``seed``) fitted on the training embeddings ``z``, and a JSON record of
    the fit (method, samples, seconds, constant columns) for the run's ``result.json``."""
    quantizer = build_rotation(
        config.quantization,
        config.n_bits,
        loss=config.h2q_loss,
        solver=config.h2q_solver,
        seed=config.seed,
    )
    start = time.perf_counter()
    quantizer, constant = fit_rotation(quantizer, z, config.seed)
    info = {
        "method": config.quantization,
        "n_samples": len(z),
        "seconds": time.perf_counter() - start,
        "constant_columns": constant,
    }
    return quantizer, info
