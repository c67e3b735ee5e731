"""Deep hashing trainer on real data (scikit-learn digits): learning, seeding, validation, H²Q."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.codes import pack  # noqa: E402
from hashlearn.deep import TrainConfig, Trainer, load_run, train_on_dataset  # noqa: E402
from hashlearn.deep.model import build_network  # noqa: E402
from hashlearn.metrics import mean_average_precision  # noqa: E402


def _test_map(hasher, ds, field):
    q = hasher.encode(getattr(ds.query, field))
    db = hasher.encode(getattr(ds.database, field))
    return mean_average_precision(q, db, ds.query.y, ds.database.y)


def test_cnn_training_beats_random_and_untrained_codes(digits):
    cfg = TrainConfig(loss="dpsh", quantization="hswd", n_bits=16, backbone="cnn",
                      epochs=4, batch_size=64, lr=3e-3, patience=0, seed=0)  # fmt: skip
    hasher = train_on_dataset(cfg, digits, progress=False)
    trained = _test_map(hasher, digits, "images")
    rng = np.random.default_rng(0)
    random_codes = mean_average_precision(
        pack(rng.standard_normal((len(digits.query), 16))),
        pack(rng.standard_normal((len(digits.database), 16))),
        digits.query.y, digits.database.y,
    )  # fmt: skip
    torch.manual_seed(0)
    untrained = build_network(hasher.config["network"])
    hasher_untrained = type(hasher)(untrained, hasher.config)
    before = _test_map(hasher_untrained, digits, "images")
    assert trained > random_codes + 0.2
    assert trained > before + 0.1


@pytest.mark.parametrize("loss", ["hashnet", "csq", "greedyhash", "dsdh"])
def test_every_loss_trains_over_features(digits, loss):
    """Losses with parameters (GreedyHash) or per-item state (DSDH) train through the trainer."""
    cfg = TrainConfig(loss=loss, quantization="penalty", n_bits=16, backbone="mlp",
                      epochs=5, batch_size=64, lr=3e-3, patience=0)  # fmt: skip
    hasher = train_on_dataset(cfg, digits, progress=False)
    assert _test_map(hasher, digits, "X") > 0.3


def test_same_seed_gives_identical_weights_and_other_seed_differs(digits):
    def weights(seed):
        cfg = TrainConfig(loss="dpsh", quantization="hswd", n_bits=16, backbone="mlp",
                          epochs=2, batch_size=64, seed=seed)  # fmt: skip
        net = train_on_dataset(cfg, digits, progress=False).network
        return [p.detach().clone() for p in net.parameters()]

    a, b, c = weights(1), weights(1), weights(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_holdout_validation_is_recorded_and_excludes_training_items(digits):
    cfg = TrainConfig(n_bits=8, backbone="mlp", epochs=1, val_fraction=0.2, seed=3)
    hasher = train_on_dataset(cfg, digits, progress=False)
    holdout = hasher.config["holdout"]
    assert digits.val is None and holdout["n_val"] == round(0.2 * len(digits.train))
    assert hasher.config["n_train"] == len(digits.train) - holdout["n_val"]
    assert hasher.config["dataset"]["validation"] == "train hold-out"
    again = train_on_dataset(cfg, digits, progress=False).config["holdout"]
    assert again["indices"] == holdout["indices"]


def test_explicit_val_split_is_used_and_labels_are_checked(digits):
    X, y = digits.train.X, digits.train.y
    cfg = TrainConfig(n_bits=8, backbone="mlp", epochs=1)
    hasher = Trainer(cfg, progress=False).fit(X[:400], y[:400], X[400:], y[400:])
    assert hasher.config["holdout"] is None and hasher.config["n_train"] == 400
    onehot = np.eye(10, dtype=np.uint8)[y]
    with pytest.raises(HashlearnInputError, match="different formats"):
        Trainer(cfg, progress=False).fit(X[:400], y[:400], X[400:], onehot[400:])
    with pytest.raises(HashlearnInputError, match="columns"):
        Trainer(cfg, progress=False).fit(X, onehot[:, :5], n_classes=10)
    with pytest.raises(HashlearnInputError, match="items but y has"):
        Trainer(cfg, progress=False).fit(X, y[:-1])
    with pytest.raises(HashlearnInputError, match="images"):
        Trainer(TrainConfig(backbone="cnn"), progress=False).fit(X, y)


def test_multilabel_targets_train(digits):
    """Multi-hot labels (each item also tagged odd/even) go through the same trainer."""
    y = digits.train.y
    multi = np.zeros((len(y), 12), dtype=np.uint8)
    multi[np.arange(len(y)), y] = 1
    multi[np.arange(len(y)), 10 + y % 2] = 1
    cfg = TrainConfig(loss="dpsh", n_bits=16, backbone="mlp", epochs=3, lr=3e-3)
    hasher = Trainer(cfg, progress=False).fit(digits.train.X, multi)
    assert hasher.config["n_classes"] == 12
    codes = hasher.encode(digits.train.X)
    assert codes.shape == (len(y), 2) and codes.dtype == np.uint8


def test_bad_config_values_raise_clear_errors():
    for kwargs, match in [({"n_bits": 0}, "n_bits"), ({"optimizer": "rmsprop"}, "optimizer"),
                          ({"schedule": "poly"}, "schedule"), ({"lr": -1.0}, "lr"),
                          ({"batch_size": 1}, "batch_size")]:  # fmt: skip
        with pytest.raises(HashlearnInputError, match=match):
            TrainConfig(**kwargs).validate()


def test_sgd_and_step_schedule_follow_the_configured_rates(digits):
    cfg = TrainConfig(n_bits=8, backbone="mlp", epochs=3, optimizer="sgd", lr=0.1,
                      schedule="step", step_size=1, gamma=0.5, patience=0)  # fmt: skip
    trainer = Trainer(cfg, progress=False)
    trainer.fit(digits.train.X, digits.train.y)
    assert [h["lr"] for h in trainer.history] == pytest.approx([0.1, 0.05, 0.025])
    assert trainer.status == "finished"


def test_two_stage_h2q_is_fitted_saved_and_never_worse_on_training_loss(digits, tmp_path):
    pytest.importorskip("hashlearn.quantize.h2q")
    cfg = TrainConfig(loss="dpsh", quantization="h2q", n_bits=16, backbone="mlp", epochs=3,
                      lr=3e-3)  # fmt: skip
    hasher = train_on_dataset(cfg, digits, tmp_path / "run", progress=False)
    assert hasher.h2q is not None and (tmp_path / "run" / "h2q.npz").is_file()
    z = hasher.embed(digits.train.X)
    rotated = hasher.transform(digits.train.X)
    # H²Q-L2 minimises mean (y - sgn y)² over rotations of the √k-normalised embeddings; the
    # identity's (or −I's) value is available to it, so it is never worse than plain signs.
    k = z.shape[1]
    zn = z / np.linalg.norm(z, axis=1, keepdims=True) * np.sqrt(k)
    yn = rotated / np.linalg.norm(rotated, axis=1, keepdims=True) * np.sqrt(k)
    assert np.mean((yn - np.sign(yn)) ** 2) <= np.mean((zn - np.sign(zn)) ** 2) + 1e-6
    loaded = load_run(tmp_path / "run")
    assert np.array_equal(loaded.encode(digits.query.X), hasher.encode(digits.query.X))


def test_objective_feeds_hswd_the_pre_activation_and_the_penalty_the_codes(digits):
    """HSWD/SWD see the hash layer's output before tanh (HSWD authors' code); the method's own
    penalty sees the tanh codes its loss sees."""
    from hashlearn.deep.losses import get_loss
    from hashlearn.deep.objective import Objective
    from hashlearn.deep.quantization import get_quantization, hswd, sample_balanced_target

    torch.manual_seed(0)
    spec = {"backbone": "mlp", "n_bits": 8, "activation": "tanh", "hidden": 0,
            "in_features": 64}  # fmt: skip
    net = build_network(spec)
    with torch.no_grad():  # large weights: tanh saturates, so a and tanh(a) differ a lot
        net.head[-1].weight.mul_(20.0)
    x = torch.from_numpy(digits.train.X[:32]).float()
    labels = torch.nn.functional.one_hot(torch.from_numpy(digits.train.y[:32]), 10).float()
    loss = get_loss("csq", 8, 10)
    a = net.head_pre_activation(x).detach()
    assert a.abs().max() > 2.0
    term = get_quantization("hswd", weight=1.0, generator=5)
    _, _, quant, z = Objective(net, loss, term, features_input=True)(x, labels, None)
    target = sample_balanced_target((32, 8), torch.Generator().manual_seed(5), a)
    assert torch.allclose(quant, hswd(a, target))
    assert not torch.allclose(quant, hswd(torch.tanh(a), target))
    assert torch.allclose(z, torch.tanh(a))
    penalty = get_quantization("penalty", weight=1.0, loss=loss)
    _, _, quant, _ = Objective(net, loss, penalty, features_input=True)(x, labels, None)
    assert torch.allclose(quant, loss.quantization_penalty(torch.tanh(a)))


def test_training_keeps_the_callers_torch_thread_count(digits):
    """The validation mAP (numba/OpenMP) and the H²Q fit (threadpoolctl) must not change the
    caller's torch.set_num_threads (it made training steps many times slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = TrainConfig(loss="dpsh", quantization="h2q", n_bits=8, backbone="mlp",
                          epochs=2, batch_size=64, patience=0, seed=0)  # fmt: skip
        train_on_dataset(cfg, digits, progress=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("loss,warns", [("greedyhash", True), ("dpsh", False)])
def test_h2q_warns_for_losses_that_are_not_rotation_invariant(digits, caplog, loss, warns):
    cfg = TrainConfig(loss=loss, quantization="h2q", n_bits=8, backbone="mlp",
                      epochs=1, batch_size=64, patience=0, seed=0)  # fmt: skip
    with caplog.at_level("WARNING", logger="hashlearn"):
        train_on_dataset(cfg, digits, progress=False)
    assert any("rotation-invariant" in r.getMessage() for r in caplog.records) == warns
