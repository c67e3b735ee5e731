"""Quantization strategies for deep hashing, composable with every similarity loss.

A deep hashing objective is ``similarity_loss(u) + quantization(u)`` where ``u`` are the
continuous codes of a batch (Doan, Yang & Li, "One Loss for Quantization: Deep Hashing with
Discrete Wasserstein Distributional Matching", CVPR 2022, eq. 1).  This module provides the
second term, chosen by name through :func:`get_quantization`:

``none``
    λ = 0: similarity learning only, codes are ``sign(u)`` afterwards.
``penalty``
    the method's own quantization term (``loss.quantization_penalty``), weighted by λ
    (the loss's ``default_quantization_weight`` unless a weight is given).
``hswd``
    Hash-Sliced Wasserstein distance (Doan et al. 2022): for every bit, sort the batch's values
    and a freshly sampled Bernoulli(0.5) ±1 target of the same size and take the mean squared
    difference (the squared 1-D Wasserstein-2 distance, averaged over the bits).  Weight α = 0.1.
``swd``
    Sliced Wasserstein distance: the same 1-D distance along ``n_projections`` random unit
    directions (10,000 in the paper) instead of the coordinate axes.  Weight α = 0.1.
``h2q``
    two-stage Householder quantization (Schwengber et al., arXiv 2311.04207): zero during
    training (``two_stage = True``); the trainer fits :class:`hashlearn.quantize.H2Q` on the
    training embeddings afterwards.
``itq``
    the H²Q paper's post-hoc baseline: the same λ = 0 training, then an ITQ rotation
    (:class:`hashlearn.quantize.ITQ`) fitted on the uncentred training embeddings, as the authors.
``itq-centred``
    our variant of ``itq``: the training mean is subtracted before the ITQ rotation.

For a loss that binarises by continuation (``loss.continuation``, HashNet) every strategy but
``none`` carries that continuation: the hash layer's output is scaled by the loss's β schedule
(:class:`Continuation`). ``penalty`` is the continuation alone (:class:`ContinuationQuantization`);
``hswd`` / ``swd`` add their term on top of it, as the HSWD code (khoadoan106/
single_loss_quantization ``python/HashNet.py``) and the H²Q code (Lucas-Schwengber/h2q
``src/models/QS/lightning_module.py``) both do; the two-stage strategies train with it at λ = 0,
as the H²Q code does.

Every random draw uses a seeded :class:`torch.Generator` held by the term (on the CPU, so the
sampled targets are identical on every device); ``state_dict`` / ``load_state_dict`` save and
restore it for bit-exact resumed runs.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from hashlearn._validation import HashlearnInputError, check_choice
from hashlearn.deep.config import N_PROJECTIONS, QUANTIZATIONS, TWO_STAGE
from hashlearn.deep.losses.base import HashLoss

__all__ = ["QUANTIZATIONS", "TWO_STAGE", "QuantizationTerm", "get_quantization"]

DEFAULT_WASSERSTEIN_WEIGHT = 0.1

log = logging.getLogger("hashlearn")


def sample_balanced_target(
    shape: tuple[int, ...], generator: torch.Generator, like: Tensor
) -> Tensor:
    """Entries drawn i.i.d. from Bernoulli(0.5) on {-1, +1} (on the CPU, then moved to ``like``)."""
    bits = torch.randint(0, 2, shape, generator=generator, device="cpu")
    return (bits * 2 - 1).to(dtype=like.dtype, device=like.device)


def sorted_wasserstein(a: Tensor, b: Tensor) -> Tensor:
    """Squared 1-D Wasserstein-2 distance per column, averaged over columns.

    For two empirical distributions with the same number of atoms the optimal transport plan
    matches order statistics, so ``W2² = mean_i (sort(a)_i - sort(b)_i)²``.
    """
    return (torch.sort(a, dim=0).values - torch.sort(b, dim=0).values).pow(2).mean()


def random_projections(n_bits: int, n_projections: int, generator: torch.Generator) -> Tensor:
    """``(n_bits, n_projections)`` directions uniform on the unit sphere (float32, CPU)."""
    directions = torch.randn(n_bits, n_projections, generator=generator, device="cpu")
    return directions / directions.norm(dim=0, keepdim=True).clamp_min(1e-12)


def hswd(codes: Tensor, target: Tensor) -> Tensor:
    """Hash-Sliced Wasserstein distance between ``codes`` and a ±1 ``target`` (same shape)."""
    return sorted_wasserstein(codes, target)


def swd(codes: Tensor, target: Tensor, projections: Tensor) -> Tensor:
    """Sliced Wasserstein distance along the columns of ``projections`` (n_bits × L)."""
    projections = projections.to(dtype=codes.dtype, device=codes.device)
    return sorted_wasserstein(codes @ projections, target @ projections)


def _make_generator(generator: torch.Generator | int | None) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        if generator.device.type != "cpu":
            raise HashlearnInputError(
                "the quantization generator must live on the CPU (targets are drawn there so "
                "runs are identical on every device); pass torch.Generator() or an int seed."
            )
        return generator
    if generator is None:
        generator = 0
    if isinstance(generator, bool) or not isinstance(generator, int):
        raise HashlearnInputError(
            f"generator must be a torch.Generator, an int seed or None, got {generator!r}."
        )
    return torch.Generator(device="cpu").manual_seed(generator)


def _check_codes(codes: Any) -> Tensor:
    if not isinstance(codes, Tensor) or codes.ndim != 2:
        shape = tuple(codes.shape) if hasattr(codes, "shape") else type(codes).__name__
        raise HashlearnInputError(f"codes must be a 2-D torch tensor (batch, n_bits), got {shape}.")
    if codes.shape[0] == 0:
        raise HashlearnInputError(
            "empty batch: codes has 0 rows; drop empty batches before computing the loss."
        )
    return codes


class QuantizationTerm:
    """A weighted quantization term ``term(codes) -> scalar tensor``.

    Attributes:
        name: the registered strategy name.
        weight: λ (or α) multiplying the unweighted term.
        two_stage: True only for ``h2q``: the term is zero and binarization happens after
            training by fitting an orthogonal rotation.
        on_pre_activation: True for ``hswd``/``swd``: the trainer passes the hash layer's
            output before ``tanh`` (as the HSWD authors' code does); False: the codes the
            similarity loss sees (the method's own penalty is defined on those).
    """

    name = "none"
    two_stage = False
    on_pre_activation = False

    def __init__(self, weight: float = 0.0) -> None:
        self.weight = float(weight)
        self.continuation: Continuation | None = None

    # -- HashNet's continuation (a no-op without one) ---------------------------------------
    def set_iteration(self, iteration: int, epoch: int = 1) -> None:
        """The 1-based training step about to run and its 1-based epoch."""
        if self.continuation is not None:
            self.continuation.set_iteration(iteration, epoch)

    @property
    def activation_scale(self) -> float:
        """β multiplying the hash layer's output before ``tanh`` (1 without a continuation)."""
        return 1.0 if self.continuation is None else self.continuation.activation_scale

    def check_schedule(self, iterations: int, epochs: int | None = None) -> None:
        """Warn when the continuation's β never steps within the run."""
        if self.continuation is not None:
            self.continuation.check_schedule(iterations, epochs)

    def unweighted(self, codes: Tensor) -> Tensor:
        return codes.new_zeros(())

    def __call__(self, codes: Tensor) -> Tensor:
        codes = _check_codes(codes)
        if self.weight == 0.0:
            return codes.new_zeros(())
        return self.weight * self.unweighted(codes)

    def state_dict(self) -> dict[str, Tensor]:
        """Random-number state to checkpoint (empty for deterministic terms)."""
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weight={self.weight})"


class PenaltyQuantization(QuantizationTerm):
    """The method's own quantization term ``λ · loss.quantization_penalty(codes)``."""

    name = "penalty"

    def __init__(self, loss: HashLoss, weight: float) -> None:
        super().__init__(weight)
        self.loss = loss

    def unweighted(self, codes: Tensor) -> Tensor:
        return self.loss.quantization_penalty(codes)


class Continuation:
    """Binarisation by continuation (HashNet, Cao et al., ICCV 2017, Sec. 3.3): the codes are
    ``tanh(β a)`` with β from ``loss.beta(iteration, epoch)``.

    The trainer calls :meth:`set_iteration` before every batch and multiplies the hash layer's
    output by :attr:`activation_scale`. β is a function of the iteration and epoch alone, so a
    resumed run continues the schedule without saved state.
    """

    def __init__(self, loss: HashLoss) -> None:
        self.loss = loss
        self.iteration, self.epoch = 0, 1

    def set_iteration(self, iteration: int, epoch: int = 1) -> None:
        self.iteration, self.epoch = int(iteration), int(epoch)

    @property
    def activation_scale(self) -> float:
        return float(self.loss.beta(self.iteration, self.epoch))

    def check_schedule(self, iterations: int, epochs: int | None = None) -> None:
        unit = getattr(self.loss, "beta_unit", "iteration")
        count = iterations if unit == "iteration" or epochs is None else epochs
        step = self.loss.beta_step
        if count <= step:
            log.warning(
                "HashNet's continuation raises beta every %d %ss but this run has %d, so beta "
                "stays %.3g and trains like quantization='none'; pass "
                "loss_kwargs={'beta_step': N} with N < %d.",
                step, unit, count, self.loss.beta(1, 1), count,
            )  # fmt: skip


class ContinuationQuantization(QuantizationTerm):
    """``penalty`` for a continuation loss: no added term, only the loss's β schedule."""

    name = "penalty"

    def __init__(self, loss: HashLoss) -> None:
        super().__init__(0.0)
        self.loss = loss
        self.continuation = Continuation(loss)

    def __repr__(self) -> str:
        return f"ContinuationQuantization(beta={self.activation_scale:.4g})"


class _RandomTargetTerm(QuantizationTerm):
    on_pre_activation = True

    def __init__(self, weight: float, generator: torch.Generator | int | None) -> None:
        super().__init__(weight)
        self.generator = _make_generator(generator)

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator_state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator_state"].to(torch.uint8).cpu())


class HSWDQuantization(_RandomTargetTerm):
    """Hash-Sliced Wasserstein quantization (Doan, Yang & Li, CVPR 2022).

    ``α · mean_l W2²(u[:, l], t[:, l])`` with ``t`` a fresh Bernoulli(0.5) ±1 sample of the
    batch's shape: it matches each bit's distribution to a balanced binary one, so it pulls
    the codes to ±1 and balances the bits with one term.  Cost O(k·B log B) per batch.
    """

    name = "hswd"

    def unweighted(self, codes: Tensor) -> Tensor:
        target = sample_balanced_target(tuple(codes.shape), self.generator, codes)
        return hswd(codes, target)


class SWDQuantization(_RandomTargetTerm):
    """Sliced Wasserstein quantization with random projections (Doan et al. 2022, "-S" rows).

    Args:
        n_projections: number of random unit directions drawn afresh for every batch
            (10,000 in the paper).
        projections: fixed ``(n_bits, L)`` directions instead of random ones (with the
            identity matrix this is exactly HSWD).
    """

    name = "swd"

    def __init__(
        self,
        weight: float,
        generator: torch.Generator | int | None,
        n_projections: int = N_PROJECTIONS,
        projections: Tensor | None = None,
    ) -> None:
        super().__init__(weight, generator)
        if (
            isinstance(n_projections, bool)
            or not isinstance(n_projections, int)
            or (n_projections < 1)
        ):
            raise HashlearnInputError(
                f"n_projections must be a positive integer, got {n_projections!r}."
            )
        self.n_projections = n_projections
        self.projections = projections

    def unweighted(self, codes: Tensor) -> Tensor:
        target = sample_balanced_target(tuple(codes.shape), self.generator, codes)
        projections = self.projections
        if projections is None:
            projections = random_projections(codes.shape[1], self.n_projections, self.generator)
        elif projections.ndim != 2 or projections.shape[0] != codes.shape[1]:
            raise HashlearnInputError(
                f"projections must have shape (n_bits={codes.shape[1]}, L), "
                f"got {tuple(projections.shape)}."
            )
        return swd(codes, target, projections)


class TwoStage(QuantizationTerm):
    """Stage one of H²Q / post-hoc ITQ: no quantization during training (λ = 0); the rotation
    is fitted after training (see the module docstring)."""

    two_stage = True

    def __init__(self, name: str) -> None:
        super().__init__(0.0)
        self.name = name


def get_quantization(
    name: str,
    weight: float | None = None,
    loss: HashLoss | None = None,
    n_projections: int = N_PROJECTIONS,
    generator: torch.Generator | int | None = None,
) -> QuantizationTerm:
    """Build the quantization strategy ``name`` (one of :data:`QUANTIZATIONS`).

    Args:
        name: "none", "penalty", "hswd", "swd", "h2q" or "itq".
        weight: λ / α; defaults: 0 for none, h2q and itq, ``loss.default_quantization_weight`` for
            penalty, 0.1 for hswd and swd.
        loss: the similarity loss (required for "penalty").
        n_projections: number of random directions for "swd".
        generator: CPU ``torch.Generator`` or int seed for the random targets (seed 0 if None).
    """
    check_choice(name, QUANTIZATIONS, "quantization")
    if weight is not None:
        weight = float(weight)
        if not weight >= 0.0 or weight == float("inf"):
            raise HashlearnInputError(
                f"quantization weight must be a finite number >= 0, got {weight!r}."
            )
    if name == "none":
        return QuantizationTerm(0.0)
    term = _build(name, weight, loss, n_projections, generator)
    if loss is not None and getattr(loss, "continuation", False):
        term.continuation = term.continuation or Continuation(loss)
        if getattr(loss, "quantize_codes", False):
            term.on_pre_activation = False  # the H²Q code's HSWD sees tanh(β a)
    return term


def _build(
    name: str,
    weight: float | None,
    loss: HashLoss | None,
    n_projections: int,
    generator: torch.Generator | int | None,
) -> QuantizationTerm:
    if name in TWO_STAGE:
        return TwoStage(name)
    if name == "penalty":
        if loss is None:
            raise HashlearnInputError(
                "quantization 'penalty' needs the loss whose own penalty it applies; "
                "pass loss=get_loss(...)."
            )
        if getattr(loss, "continuation", False):
            if weight not in (None, 0.0):
                raise HashlearnInputError(
                    f"{type(loss).__name__} binarises by continuation, which has no weight; "
                    "leave the quantization weight unset (its schedule is a loss argument)."
                )
            return ContinuationQuantization(loss)
        return PenaltyQuantization(
            loss, loss.default_quantization_weight if weight is None else weight
        )
    weight = DEFAULT_WASSERSTEIN_WEIGHT if weight is None else weight
    if name == "hswd":
        return HSWDQuantization(weight, generator)
    return SWDQuantization(weight, generator, n_projections=n_projections)
