"""Quantization strategies of hashlearn.deep: HSWD/SWD definitions, weights, seeding, errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.deep.losses import get_loss  # noqa: E402
from hashlearn.deep.quantization import QUANTIZATIONS, get_quantization, hswd  # noqa: E402
from hashlearn.deep.signs import binarize, sign_ste  # noqa: E402


def _codes(n=6, k=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, dtype=dtype).tanh()


def _hand_hswd(codes, target):
    """Per bit: sort both columns, mean squared difference; then mean over bits."""
    rows, cols = len(codes), len(codes[0])
    per_bit = []
    for c in range(cols):
        a = sorted(codes[r][c] for r in range(rows))
        b = sorted(target[r][c] for r in range(rows))
        per_bit.append(sum((x - y) ** 2 for x, y in zip(a, b)) / rows)
    return sum(per_bit) / cols


def test_hswd_equals_definition_on_hand_example():
    codes = [[0.5, -0.2], [-0.9, 0.8], [0.1, 0.3], [-0.4, -1.0]]
    target = [[1.0, -1.0], [-1.0, -1.0], [1.0, 1.0], [1.0, 1.0]]
    got = hswd(torch.tensor(codes, dtype=torch.float64), torch.tensor(target, dtype=torch.float64))
    assert got.item() == pytest.approx(_hand_hswd(codes, target), abs=1e-12)


def test_hswd_term_samples_a_seeded_balanced_target():
    codes = _codes(8, 5)
    term = get_quantization("hswd", weight=1.0, generator=7)
    value = term(codes)
    g = torch.Generator().manual_seed(7)
    target = torch.randint(0, 2, (8, 5), generator=g) * 2 - 1
    assert set(target.unique().tolist()) <= {-1, 1}
    assert value.item() == pytest.approx(_hand_hswd(codes.tolist(), target.tolist()), abs=1e-12)
    # Same seed -> same value; the next call draws a fresh target.
    again = get_quantization("hswd", weight=1.0, generator=7)
    assert again(codes).item() == value.item()
    assert again(codes).item() != value.item()


def test_swd_with_coordinate_axes_equals_hswd():
    codes = _codes(10, 6)
    h = get_quantization("hswd", weight=0.3, generator=3)
    s = get_quantization("swd", weight=0.3, generator=3)
    s.projections = torch.eye(6, dtype=torch.float64)
    for _ in range(3):
        assert s(codes).item() == pytest.approx(h(codes).item(), abs=1e-14)


def test_swd_random_projections_reproducible_and_gradient_flows():
    codes = _codes(16, 8).requires_grad_(True)
    a = get_quantization("swd", n_projections=50, generator=1)
    b = get_quantization("swd", n_projections=50, generator=1)
    va, vb = a(codes), b(codes)
    assert va.item() == vb.item() and va.item() > 0
    va.backward()
    assert torch.isfinite(codes.grad).all() and codes.grad.abs().sum() > 0


def test_wasserstein_terms_vanish_on_balanced_binary_codes_only():
    binary = torch.tensor([[1.0, -1.0], [-1.0, 1.0]] * 4, dtype=torch.float64)
    term = get_quantization("hswd", weight=1.0, generator=0)
    # Each bit of a ±1 batch differs from a Bernoulli sample only by the count imbalance.
    values = [term(binary).item() for _ in range(20)]
    assert min(values) == 0.0
    continuous = 0.2 * binary
    assert min(term(continuous).item() for _ in range(20)) > 0.5


def test_default_weights_and_penalty_uses_the_loss():
    loss = get_loss("dpsh", 4, 3)
    codes = _codes(6, 4)
    assert get_quantization("none")(codes).item() == 0.0
    h2q = get_quantization("h2q")
    assert h2q.two_stage and h2q(codes).item() == 0.0
    assert not get_quantization("hswd").two_stage
    assert get_quantization("hswd").weight == 0.1 and get_quantization("swd").weight == 0.1
    pen = get_quantization("penalty", loss=loss)
    assert pen.weight == loss.default_quantization_weight
    expected = loss.default_quantization_weight * loss.quantization_penalty(codes)
    assert pen(codes).item() == pytest.approx(expected.item())
    assert get_quantization("penalty", weight=2.0, loss=loss)(codes).item() == pytest.approx(
        2.0 * loss.quantization_penalty(codes).item()
    )


def test_generator_state_roundtrip_gives_identical_next_value():
    codes = _codes(6, 4)
    term = get_quantization("hswd", generator=5)
    term(codes)
    state = term.state_dict()
    expected = term(codes).item()
    fresh = get_quantization("hswd", generator=123)
    fresh.load_state_dict(state)
    assert fresh(codes).item() == expected


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(HashlearnInputError, match="quantization"):
        get_quantization("pq")
    with pytest.raises(HashlearnInputError, match="penalty"):
        get_quantization("penalty")
    with pytest.raises(HashlearnInputError, match="weight"):
        get_quantization("hswd", weight=-1)
    with pytest.raises(HashlearnInputError, match="n_projections"):
        get_quantization("swd", n_projections=0)
    for name in QUANTIZATIONS:
        term = get_quantization(name, loss=get_loss("dpsh", 4, 2))
        with pytest.raises(HashlearnInputError, match="empty batch"):
            term(torch.zeros(0, 4))


def test_sign_ste_forward_is_binary_and_backward_is_identity():
    u = torch.tensor([[-0.3, 0.0, 0.7]], requires_grad=True)
    b = sign_ste(u)
    assert b.tolist() == binarize(u).tolist() == [[-1.0, -1.0, 1.0]]
    (b * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert u.grad.tolist() == [[1.0, 2.0, 3.0]]


def test_benchmark_timing_reports_every_quantization_term():
    """``benchmarks/_timing.py`` (outside the library) times each term, forward + backward."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "_timing.py"
    spec = importlib.util.spec_from_file_location("bench_timing", path)
    timing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(timing)
    timings = timing.time_quantization_terms(
        ("hswd", "swd"), batch_size=16, n_bits=8, n_batches=2, n_projections=100
    )
    assert set(timings) == {"hswd", "swd"} and all(t > 0 for t in timings.values())
