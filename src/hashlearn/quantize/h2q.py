"""H²Q: Householder quantization of continuous embeddings (Schwengber et al., arXiv 2311.04207).

Stage 2 of the paper: given embeddings ``z`` learned with a similarity loss only, find the
orthogonal ``R`` minimising a quantization loss of ``Y = Z R`` (:mod:`.losses`), then code with
``sgn(Z R)``. Similarity losses are invariant under rotations, so this costs no retrieval
quality; it only moves every embedding closer to a corner of the hypercube.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils._param_validation import StrOptions

from hashlearn.base import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE_INT
from hashlearn.quantize.h2q_solvers import solve_fast, solve_sgd
from hashlearn.quantize.losses import LOSSES, PAPER_LEARNING_RATES
from hashlearn.quantize.rotation import RotationQuantizer
from hashlearn.quantize.sign import SignQuantizer
from hashlearn.registry import register_method

SOLVERS = ("fast", "sgd")


@register_method("h2q")
class H2Q(RotationQuantizer):
    """Learned rotation before sign, parametrised and solved as chosen by ``solver``.

    Preprocessing: when the input dimension equals ``n_bits`` (a network's embedding) the rows
    are only rescaled to norm √k, as in the paper (no centring). When it is larger, the features
    are centred and projected on their top ``n_bits`` principal directions first, and the
    projected rows are rescaled to √k. Rescaling never changes a code.

    Solvers (see :mod:`.h2q_solvers`):

    - ``"fast"`` (default): full-batch Riemannian Barzilai–Borwein descent with Cayley steps
      on the exact loss, preceded by a continuation on a smoothed L2 loss and followed (L2) by
      ITQ Procrustes steps to a local minimum; the best of a local run from ``I``, the
      continuation from ``I`` and ``n_restarts - 1`` continuations from seeded random
      rotations is kept. Deterministic; the loss is never above that of the sign codes. On
      20,000 × 64 Gaussian embeddings it reaches a lower L2 loss than the paper's 300 SGD
      epochs in a few seconds (``benchmarks/bench_quantize.py``). Beyond three times
      ``max(8192, 32 k)`` rows the exploration runs on a seeded row sample of that size and
      only the last phase on all rows, so a large fit does at most about twice ITQ's matrix
      products (:func:`~hashlearn.quantize.h2q_solvers.solve_fast`,
      ``benchmarks/bench_h2q_scaling.py``).
    - ``"sgd"``: the paper's procedure for faithful reproduction: ``k`` Householder
      reflections initialised at ``-I``, plain SGD with batch ``batch_size`` for ``max_iter``
      epochs (default 300) at ``learning_rate`` (default 0.1; 0.01 for ``bit_var``), the
      reflections in the authors' order; with ``fit(X, X_val=...)`` the epoch of lowest
      validation loss is kept, as in the authors' code (else the last epoch).

    Args:
        n_bits: code length (default: the input dimension).
        loss: ``"l2"``, ``"l1"``, ``"min_entry"`` or ``"bit_var"`` (:mod:`.losses`).
        solver: ``"fast"`` or ``"sgd"``.
        max_iter: ``"sgd"``: epochs (default 300); ``"fast"``: iterations of the exact-loss
            phase (default 100; the continuation adds at most 100; unused by a row-sampled
            L2 fit, whose exact-loss phase is ITQ's steps on all rows).
        tol: ``"fast"``: a phase stops after 10 iterations without a relative improvement > tol.
        n_restarts: ``"fast"``: number of starts (the identity, then seeded random rotations).
        learning_rate, batch_size: ``"sgd"`` step size and mini-batch size.
        random_state: seed (SGD shuffling, random restarts).
        verbose: progress bars on stderr.

    Attributes:
        rotation_: learned k × k orthogonal matrix; codes are ``sgn(preprocess(x) @ rotation_)``.
        mean_, components_: the PCA projection, ``None`` in the deep case.
        loss_curve_: exact loss at the start and after every iteration (``"sgd"``: epoch).
        loss_: training loss of the returned rotation; n_iter_: iterations (epochs) run.
        best_epoch_: ``"sgd"``: the epoch returned (1-based); None for ``"fast"``.
    """

    default_loss = "l2"
    _parameter_constraints: dict = {
        "n_bits": SignQuantizer._parameter_constraints["n_bits"],
        "loss": [StrOptions(set(LOSSES)), None],
        "solver": [StrOptions(set(SOLVERS))],
        "max_iter": [NON_NEGATIVE_INT, None],
        "tol": [NON_NEGATIVE],
        "n_restarts": [POSITIVE_INT],
        "learning_rate": [NON_NEGATIVE, None],
        "batch_size": [POSITIVE_INT],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_bits: int | None = None,
        loss: str | None = None,
        solver: str = "fast",
        max_iter: int | None = None,
        tol: float = 1e-6,
        n_restarts: int = 1,
        learning_rate: float | None = None,
        batch_size: int = 128,
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_bits = n_bits
        self.loss = loss
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.n_restarts = n_restarts
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    @property
    def loss_name(self) -> str:
        """The loss in use: ``loss`` or, when it is ``None``, the class default."""
        return self.default_loss if self.loss is None else self.loss

    def _fit_rotation(
        self, Z: np.ndarray, rng: np.random.RandomState, Z_val: np.ndarray | None = None
    ) -> np.ndarray:
        loss = self.loss_name
        if self.solver == "sgd":
            result = solve_sgd(
                Z,
                loss,
                epochs=300 if self.max_iter is None else int(self.max_iter),
                learning_rate=(
                    PAPER_LEARNING_RATES[loss]
                    if self.learning_rate is None
                    else float(self.learning_rate)
                ),
                batch_size=int(self.batch_size),
                rng=rng,
                progress=self.verbose,
                Z_val=Z_val,
            )
        else:
            result = solve_fast(
                Z,
                loss,
                max_iter=100 if self.max_iter is None else int(self.max_iter),
                tol=float(self.tol),
                n_restarts=int(self.n_restarts),
                rng=rng,
                progress=self.verbose,
            )
        self.loss_curve_ = [float(v) for v in result.loss_curve]
        self.n_iter_ = int(result.n_iter)
        self.loss_ = float(result.loss)
        self.best_epoch_ = result.best_epoch
        return result.rotation


# The other losses as named methods, so the CLI (which passes only n_bits and random_state)
# reaches them: each variant only changes the default loss.
@register_method("h2q-l1")
class H2QL1(H2Q):
    """:class:`H2Q` with ``loss="l1"`` by default."""

    default_loss = "l1"


@register_method("h2q-min-entry")
class H2QMinEntry(H2Q):
    """:class:`H2Q` with ``loss="min_entry"`` by default."""

    default_loss = "min_entry"


@register_method("h2q-bit-var")
class H2QBitVar(H2Q):
    """:class:`H2Q` with ``loss="bit_var"`` by default."""

    default_loss = "bit_var"
