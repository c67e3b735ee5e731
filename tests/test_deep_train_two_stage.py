"""Two-stage H²Q / ITQ in the trainer, HashNet's continuation, ADSH and the new options."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.deep import TrainConfig, Trainer, load_run  # noqa: E402
from hashlearn.deep.two_stage import build_rotation, fit_rotation  # noqa: E402
from hashlearn.quantize import H2Q, ITQ  # noqa: E402


def _small(digits):
    """Train on 200 digits, validate on 100 (explicit splits, so the training rows are known)."""
    X, y = digits.train.X, digits.train.y
    return X[:200], y[:200], X[200:300], y[200:300]


def test_h2q_stage_uses_the_chosen_solver_and_loss(digits, tmp_path):
    X, y, Xv, yv = _small(digits)
    cfg = TrainConfig(loss="dpsh", quantization="h2q", h2q_solver="sgd", h2q_loss="l1",
                      n_bits=8, backbone="mlp", epochs=2, batch_size=50, seed=3)  # fmt: skip
    hasher = Trainer(cfg, tmp_path / "run", progress=False).fit(X, y, Xv, yv)
    assert isinstance(hasher.h2q, H2Q)
    assert (hasher.h2q.solver, hasher.h2q.loss) == ("sgd", "l1")
    # SGD keeps the epoch of lowest loss on the validation embeddings, as the authors' code.
    reference = H2Q(8, loss="l1", solver="sgd", random_state=3)
    reference.fit(hasher.embed(X), X_val=hasher.embed(Xv))
    np.testing.assert_allclose(hasher.h2q.rotation_, reference.rotation_, atol=1e-6)
    assert hasher.h2q.best_epoch_ == reference.best_epoch_
    assert hasher.config["network"]["activation"] == "identity"  # stage one: no tanh
    loaded = load_run(tmp_path / "run")
    assert np.array_equal(loaded.encode(Xv), hasher.encode(Xv))


@pytest.mark.parametrize(("quantization", "center"), [("itq", False), ("itq-centred", True)])
def test_itq_stage_is_post_hoc_itq_on_the_same_embeddings(digits, tmp_path, quantization, center):
    # The authors' ITQ baseline does not centre (Lucas-Schwengber/h2q src/models/ITQ/train.py);
    # centring is our named variant.
    X, y, Xv, yv = _small(digits)
    cfg = TrainConfig(loss="cel", quantization=quantization, n_bits=8, backbone="mlp",
                      epochs=2, batch_size=50, seed=1)  # fmt: skip
    hasher = Trainer(cfg, tmp_path / "run", progress=False).fit(X, y, Xv, yv)
    assert isinstance(hasher.h2q, ITQ) and (tmp_path / "run" / "itq.npz").is_file()
    assert hasher.h2q.center is center and (hasher.h2q.mean_ is not None) is center
    reference = ITQ(8, center=center, random_state=1).fit(hasher.embed(X))
    np.testing.assert_allclose(hasher.h2q.rotation_, reference.rotation_, atol=1e-6)
    other = ITQ(8, center=not center, random_state=1).fit(hasher.embed(X))
    assert not np.array_equal(other.encode(hasher.embed(X)), hasher.encode(X))
    loaded = load_run(tmp_path / "run")
    assert isinstance(loaded.h2q, ITQ) and loaded.h2q.center is center
    assert np.array_equal(loaded.encode(Xv), hasher.encode(Xv))


@pytest.mark.parametrize(
    ("quantization", "stage1", "expected"),
    [("h2q", "identity", "identity"), ("h2q", "tanh", "tanh"), ("none", "identity", "tanh")],
)
def test_stage_one_activation(digits, quantization, stage1, expected):
    X, y, Xv, yv = _small(digits)
    cfg = TrainConfig(loss="dch", quantization=quantization, stage1_activation=stage1,
                      n_bits=8, backbone="mlp", epochs=1, batch_size=50)  # fmt: skip
    hasher = Trainer(cfg, progress=False).fit(X, y, Xv, yv)
    assert hasher.config["network"]["activation"] == expected
    squashed = hasher.network.squash(torch.tensor([2.0])).item()
    assert squashed == pytest.approx(2.0 if expected == "identity" else np.tanh(2.0))


def test_constant_embedding_column_does_not_stop_the_rotation():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 8)).astype(np.float32)
    z[:, 2] = 0.5
    for name in ("h2q", "itq"):
        quantizer, constant = fit_rotation(build_rotation(name, 8, loss="l2", solver="fast",
                                                          seed=0), z, seed=0)  # fmt: skip
        assert constant == [2]
        r = quantizer.rotation_
        np.testing.assert_allclose(r @ r.T, np.eye(8), atol=1e-6)
        # The folded rotation codes z exactly as the quantizer fitted in the rotated frame.
        q, rr = np.linalg.qr(np.random.default_rng(0).standard_normal((8, 8)))
        q = q * np.sign(np.diag(rr))
        frame = build_rotation(name, 8, loss="l2", solver="fast", seed=0)
        frame.fit((z.astype(np.float64) @ q).astype(np.float32))
        assert np.array_equal(np.sign(quantizer.transform(z)), np.sign(frame.transform(z @ q)))
    z[:] = 1.0
    with pytest.raises(HashlearnInputError, match="identical"):
        fit_rotation(build_rotation("h2q", 8, loss="l2", solver="fast", seed=0), z, seed=0)


def test_hashnet_continuation_in_the_trainer_differs_from_lambda_zero(digits):
    X, y, Xv, yv = _small(digits)
    runs = {}
    for quantization in ("none", "penalty"):
        cfg = TrainConfig(loss="hashnet", quantization=quantization, n_bits=8, backbone="mlp",
                          epochs=3, batch_size=2, patience=0,
                          loss_kwargs={"beta_step": 50})  # fmt: skip
        trainer = Trainer(cfg, progress=False)
        runs[quantization] = (trainer, trainer.fit(X, y, Xv, yv))
    trainer = runs["penalty"][0]
    assert trainer.quant.continuation.iteration == 300  # 3 epochs × 100 batches
    # beta = (1 + floor(n / step))^0.5 with n = 299 the 0-based iteration (the H²Q code's)
    assert trainer.quant.activation_scale == pytest.approx((1 + 299 // 50) ** 0.5)
    z_none, z_cont = (runs[q][1].embed(X) for q in ("none", "penalty"))
    assert not np.allclose(z_none, z_cont)


@pytest.mark.parametrize(
    "beta_step, warned", [(200, True), (3, False)]
)  # beta steps at n = step (0-based)
def test_hashnet_warns_when_its_schedule_never_steps(digits, caplog, beta_step, warned):
    X, y, Xv, yv = _small(digits)
    cfg = TrainConfig(loss="hashnet", quantization="penalty", n_bits=8, backbone="mlp",
                      epochs=1, batch_size=50, patience=0,
                      loss_kwargs={"beta_step": beta_step})  # fmt: skip
    with caplog.at_level("WARNING", logger="hashlearn"):
        Trainer(cfg, progress=False).fit(X, y, Xv, yv)
    messages = [r.getMessage() for r in caplog.records if "continuation" in r.getMessage()]
    assert bool(messages) is warned
    if warned:
        assert "every 200 iterations but this run has 4" in messages[0]


def test_adsh_in_the_trainer_visits_query_subsets_and_learns_database_codes(digits):
    X, y, Xv, yv = _small(digits)
    cfg = TrainConfig(loss="adsh", loss_kwargs={"n_samples": 60, "gamma": 200.0}, n_bits=8,
                      backbone="mlp", epochs=6, batch_size=20, patience=0, lr=3e-3)  # fmt: skip
    trainer = Trainer(cfg, progress=False)
    trainer.fit(X, y, Xv, yv)
    loss = trainer.loss
    assert int(loss.epochs_done) == 6
    codes = loss.database_codes
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    # Items of one class share most of their learned database bits.
    same = [(codes[y == c][:, None] == codes[y == c][None]).float().mean() for c in range(10)]
    assert float(np.mean(same)) > 0.8


def test_head_lr_multiplier_sets_the_new_layers_learning_rate(digits):
    images, y = digits.train.images, digits.train.y
    cfg = TrainConfig(loss="greedyhash", n_bits=8, backbone="cnn", epochs=1, batch_size=50,
                      lr=1e-3, head_lr_multiplier=10.0, schedule="none", cnn_width=4,
                      cnn_features=16)  # fmt: skip
    trainer = Trainer(cfg, progress=False)
    trainer.fit(images[:100], y[:100], images[100:150], y[100:150])
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 1e-2])
    head = {id(p) for p in trainer.network.head.parameters()}
    head |= {id(p) for p in trainer.loss.parameters()}
    assert {id(p) for p in groups[1]["params"]} == head


@pytest.mark.parametrize(
    ("field", "value", "choices"),
    [
        ("h2q_solver", "adam", "fast, sgd"),
        ("h2q_loss", "l3", "l2, l1, min_entry, bit_var"),
        ("stage1_activation", "relu", "identity, tanh"),
        ("quantization", "pq", "none, penalty, hswd, swd, h2q, itq"),
    ],
)
def test_unknown_names_list_the_choices(field, value, choices):
    with pytest.raises(HashlearnInputError, match=choices):
        TrainConfig(**{field: value}).validate()


def test_cli_flags_reach_the_config(digits, tmp_path, capsys):
    from hashlearn.cli.main import main

    code = main(["train", "--dataset", "digits", "--output", str(tmp_path / "r"),
                 "--h2q-solver", "newton", "--quiet"])  # fmt: skip
    assert code == 2 and "fast, sgd" in capsys.readouterr().err
    code = main(["train", "--dataset", "digits", "--backbone", "mlp", "--bits", "8",
                 "--quantization", "h2q", "--h2q-solver", "fast", "--h2q-loss", "bit_var",
                 "--stage1-activation", "tanh", "--head-lr-multiplier", "2", "--epochs", "1",
                 "--output", str(tmp_path / "run"), "--quiet"])  # fmt: skip
    assert code == 0
    train = load_run(tmp_path / "run").config["train"]
    assert (train["h2q_loss"], train["stage1_activation"], train["head_lr_multiplier"]) == (
        "bit_var", "tanh", 2.0)  # fmt: skip
