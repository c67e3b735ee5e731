"""Each loss, minimised on real data (digits) through a linear hash layer, beats random codes."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits  # noqa: E402

from hashlearn.deep.losses import available_losses, get_loss  # noqa: E402
from hashlearn.deep.quantization import get_quantization  # noqa: E402
from hashlearn.deep.signs import sign_ste  # noqa: E402
from hashlearn.metrics import mean_average_precision  # noqa: E402

N_BITS = 16


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    train, query, db = order[:400], order[400:600], order[600:1400]
    t = torch.from_numpy
    return t(X[train]).float(), t(y[train]), t(X[query]).float(), y[query], t(X[db]).float(), y[db]


def _map(layer, Xq, yq, Xd, yd):
    with torch.no_grad():
        q, d = layer(Xq).numpy(), layer(Xd).numpy()
    return mean_average_precision(q, d, yq, yd)


ACTIVATIONS = {"tanh": torch.tanh, "identity": lambda z: z, "sign_ste": sign_ste}


@pytest.mark.parametrize("quantization", ["penalty", "hswd"])
@pytest.mark.parametrize("name", [n for n in available_losses() if n != "adsh"])
def test_short_training_beats_random_codes(digits, name, quantization):
    Xtr, ytr, Xq, yq, Xd, yd = digits
    torch.manual_seed(0)
    layer = torch.nn.Linear(Xtr.shape[1], N_BITS)
    baseline = _map(layer, Xq, yq, Xd, yd)  # random linear projection
    loss = get_loss(name, N_BITS, 10, n_train=len(Xtr), random_state=0)
    term = get_quantization(quantization, loss=loss, generator=0)
    act = ACTIVATIONS[loss.activation]
    opt = torch.optim.Adam(list(layer.parameters()) + list(loss.parameters()), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    for _epoch in range(4):
        for idx in torch.randperm(len(Xtr), generator=gen).split(100):
            codes = act(layer(Xtr[idx]))
            value = loss(codes, ytr[idx], idx) + term(codes)
            opt.zero_grad()
            value.backward()
            opt.step()
        if hasattr(loss, "on_epoch_end"):
            with torch.no_grad():
                loss.on_epoch_end(act(layer(Xtr)), ytr)
    trained = _map(layer, Xq, yq, Xd, yd)
    assert trained > baseline + 0.1, (name, baseline, trained)
