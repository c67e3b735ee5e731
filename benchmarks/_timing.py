"""Micro-benchmarks of library pieces that the benchmark scripts time in isolation."""

from __future__ import annotations

import time

import torch

from hashlearn.deep.quantization import get_quantization


def time_quantization_terms(
    names: tuple[str, ...] = ("hswd", "swd"),
    batch_size: int = 128,
    n_bits: int = 32,
    n_batches: int = 20,
    n_projections: int = 10000,
    seed: int = 0,
) -> dict[str, float]:
    """Seconds per batch (forward + backward) of each quantization term on random codes.

    Isolates the cost the HSWD paper compares (HSWD vs SWD with 10,000 projections; Doan et
    al., CVPR 2022), independent of the network.
    """
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randn(batch_size, n_bits, generator=gen).tanh().requires_grad_(True)
    timings: dict[str, float] = {}
    for name in names:
        term = get_quantization(name, weight=1.0, n_projections=n_projections, generator=seed)
        term(codes).backward()  # warm-up
        start = time.perf_counter()
        for _ in range(n_batches):
            codes.grad = None
            term(codes).backward()
        timings[name] = (time.perf_counter() - start) / n_batches
    return timings
