"""Stage two of the two-stage strategies: a rotation fitted on a trained network's embeddings.

``h2q`` (Schwengber et al., arXiv 2311.04207): :class:`hashlearn.quantize.H2Q` with the chosen
solver (``fast``, or the paper's ``sgd``, which keeps the epoch of lowest loss on the
validation embeddings) and quantization loss; ``itq``: the paper's post-hoc baseline,
:class:`hashlearn.quantize.ITQ` on the same embeddings, not centred, as the authors'
(Lucas-Schwengber/h2q ``src/models/ITQ/train.py``: ``train_itq(..., centered=False)`` by
default); ``itq-centred``: our named variant that subtracts the training mean first. All are
fitted on the training embeddings of the λ = 0 network (stage one) and applied before taking
signs. :data:`STRATEGIES` is the one table of them (names and files: :mod:`hashlearn.vocab`).
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
#: Strategy → (quantizer class, fixed constructor arguments).
STRATEGIES: dict[str, tuple[type, dict[str, Any]]] = {
    "h2q": (H2Q, {}),
    "itq": (ITQ, {"center": False}),
    "itq-centred": (ITQ, {"center": True}),
}


def rotation_class(quantization: str) -> type:
    """The quantizer class of a two-stage strategy (a key of :data:`STRATEGIES`)."""
    return STRATEGIES[quantization][0]


def build_rotation(quantization: str, n_bits: int, *, loss: str, solver: str, seed: int) -> Any:
    """An unfitted quantizer of ``quantization`` seeded with ``seed`` (H²Q: ``loss``,
    ``solver``)."""
    cls, fixed = STRATEGIES[quantization]
    if cls is H2Q:
        return cls(n_bits, loss=loss, solver=solver, random_state=seed, **fixed)
    return cls(n_bits, random_state=seed, **fixed)


def fit_rotation(
    quantizer: Any, z: np.ndarray, seed: int, z_val: np.ndarray | None = None
) -> tuple[Any, list[int]]:
    """Fit ``quantizer`` on the embeddings ``z`` (n, k); also return the constant columns.

    ``z_val``: validation embeddings, for the solvers that pick an iterate on them.

    A constant embedding column (a bit the network left unused) carries no information, and
    the rotation quantizers refuse such a column in raw features. A rotation of the embedding
    space still mixes it with the others, so then the quantizer is fitted on ``z Q`` for a
    seeded random orthogonal ``Q`` (no column of ``z Q`` is constant unless all rows of ``z``
    are equal), and ``Q`` is folded into the fitted rotation (``R ← Q R``, ``mean ← mean Qᵀ``),
    which is exact: row rescaling and centring commute with ``Q``.
    """
    constant = [int(j) for j in np.flatnonzero(np.ptp(z, axis=0) == 0)]
    if not constant:
        return quantizer.fit(z, X_val=z_val), constant
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
    val = None if z_val is None else (z_val.astype(np.float64) @ q).astype(z_val.dtype)
    quantizer.fit((z.astype(np.float64) @ q).astype(z.dtype), X_val=val)
    quantizer.rotation_ = q @ quantizer.rotation_
    if getattr(quantizer, "mean_", None) is not None:
        quantizer.mean_ = quantizer.mean_ @ q.T
    return quantizer, constant


def fit_stage_two(
    config: TrainConfig, z: np.ndarray, z_val: np.ndarray | None = None
) -> tuple[Any, dict]:
    """The rotation of ``config`` (``quantization``: a two-stage strategy; ``h2q_loss``,
    ``h2q_solver``, ``seed``) fitted on the training embeddings ``z`` (and ``z_val``, the
    validation embeddings, where the solver uses them), and a JSON record of the fit (method,
    samples, seconds, constant columns, centring, H²Q SGD's epoch) for ``result.json``."""
    quantizer = build_rotation(
        config.quantization,
        config.n_bits,
        loss=config.h2q_loss,
        solver=config.h2q_solver,
        seed=config.seed,
    )
    start = time.perf_counter()
    quantizer, constant = fit_rotation(quantizer, z, config.seed, z_val)
    info = {
        "method": config.quantization,
        "n_samples": len(z),
        "seconds": time.perf_counter() - start,
        "constant_columns": constant,
    }
    if hasattr(quantizer, "center"):
        info["center"] = bool(quantizer.center)
    if getattr(quantizer, "best_epoch_", None) is not None:
        info["best_epoch"] = int(quantizer.best_epoch_)
    return quantizer, info
