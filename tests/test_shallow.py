"""Estimator-level tests of SSAH and the shallow baselines on real data (scikit-learn digits)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from hashlearn._validation import HashlearnInputError
from hashlearn.base import BaseHasher, needs_labels
from hashlearn.catalogue import available_methods, make_method
from hashlearn.codes import unpack
from hashlearn.shallow import SSAH, AnchorRBF
from hashlearn.shallow.kernel import nearest_anchor_sigma

METHODS = ["ssah", "ssah-svd", "sdh", "fsdh", "ksh", "cca-itq"]
SMALL = {"n_anchors": 120}
# KSH on a 400-item labelled subset with shorter descents keeps the generic tests quick.
EXTRA = {"ksh": {"n_labeled": 400, "max_iter": 60}}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    train, test = order[:1200], order[1200:]
    return X[train], y[train], X[test], y[test]


def params(name, **extra):
    kw = {"n_bits": 16, "random_state": 0, **EXTRA.get(name, {}), **extra}
    if name != "cca-itq":
        kw.update(SMALL)
    return kw


def class_margin(codes, y):
    """Mean Hamming distance between classes minus within classes (codes ±1)."""
    same = y[:, None] == y[None, :]
    ham = 0.5 * (codes.shape[1] - codes @ codes.T)
    return ham[~same].mean() - ham[same & ~np.eye(len(y), dtype=bool)].mean()


def signed(model, X):
    return unpack(model.encode(X), model.n_bits_) * 2.0 - 1.0


def test_registered_and_cli_compatible():
    assert set(METHODS) <= set(available_methods())
    for name in METHODS:
        model = make_method(name, n_bits=8, random_state=3)
        assert isinstance(model, BaseHasher) and needs_labels(model)
    assert make_method("ssah-svd").get_params()["r_step"] is None


@pytest.mark.parametrize("name", METHODS)
def test_out_of_sample_codes_separate_classes(digits, name):
    Xtr, ytr, Xte, yte = digits
    model = make_method(name, **params(name)).fit(Xtr, ytr)
    codes = model.encode(Xte)
    assert codes.shape == (len(Xte), 2) and codes.dtype == np.uint8
    assert model.transform(Xte).shape == (len(Xte), 16)
    # Unseen digits of one class get much closer codes than digits of different classes.
    assert class_margin(signed(model, Xte), yte) > 2.0


@pytest.mark.parametrize("name", METHODS)
def test_deterministic_and_seed_dependent(digits, name):
    Xtr, ytr, Xte, _ = digits
    a = make_method(name, **params(name)).fit(Xtr, ytr).encode(Xte)
    b = make_method(name, **params(name)).fit(Xtr, ytr).encode(Xte)
    c = make_method(name, **params(name, random_state=1)).fit(Xtr, ytr).encode(Xte)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", METHODS)
def test_save_load_round_trip(digits, name, tmp_path):
    Xtr, ytr, Xte, _ = digits
    model = make_method(name, **params(name)).fit(Xtr, ytr)
    model.save(tmp_path / "model.npz")
    loaded = BaseHasher.load(tmp_path / "model.npz")
    assert type(loaded) is type(model)
    assert np.array_equal(loaded.encode(Xte), model.encode(Xte))
    if hasattr(model, "objective_"):
        assert loaded.objective_ == model.objective_


@pytest.mark.parametrize("r_step", ["cayley", "mm"])
@pytest.mark.parametrize("p", [2.0, 1.0, 0.5, 0.3])
def test_ssah_objective_never_increases(digits, r_step, p):
    Xtr, ytr, _, _ = digits
    model = SSAH(
        n_bits=12, n_anchors=80, p=p, r_step=r_step, max_iter=8, tol=0, random_state=0
    ).fit(Xtr[:600], ytr[:600])
    obj = np.array(model.objective_)
    assert len(obj) == 9 and model.n_iter_ == 8
    assert np.all(np.diff(obj) <= 1e-9 * obj[:-1]), obj
    assert obj[-1] < 0.5 * obj[0]


@pytest.mark.parametrize("name", ["sdh", "fsdh"])
def test_baseline_objective_never_increases(digits, name):
    Xtr, ytr, _, _ = digits
    model = make_method(name, **params(name, max_iter=6, tol=0)).fit(Xtr, ytr)
    obj = np.array(model.objective_)
    assert np.all(np.diff(obj) <= 1e-9 * obj[:-1]), obj


def test_ssah_default_and_svd_r_steps_reachable_by_name(digits):
    Xtr, ytr, _, _ = digits
    a = make_method("ssah", **params("ssah", max_iter=2)).fit(Xtr, ytr)
    b = make_method("ssah-svd", **params("ssah-svd", max_iter=2)).fit(Xtr, ytr)
    assert (a.r_step_, b.r_step_) == ("cayley", "svd")
    assert not np.allclose(a.rotation_, b.rotation_)


def test_ssah_tol_stops_early(digits):
    Xtr, ytr, _, _ = digits
    model = SSAH(n_bits=8, n_anchors=60, tol=0.5, max_iter=20, random_state=0).fit(Xtr, ytr)
    assert model.n_iter_ < 20 and len(model.objective_) == model.n_iter_ + 1


def test_multilabel_fit(digits):
    """Two label sets per digit (its class and whether it is >= 5): multi-hot y."""
    Xtr, ytr, Xte, yte = digits
    Y = np.zeros((len(ytr), 12))
    Y[np.arange(len(ytr)), ytr] = 1
    Y[np.arange(len(ytr)), 10 + (ytr >= 5)] = 1
    for name in METHODS:
        model = make_method(name, **params(name)).fit(Xtr, Y)
        assert class_margin(signed(model, Xte), yte) > 1.0, name
    # 1-D ids and their one-hot matrix define the same problem.
    onehot = np.eye(10)[ytr]
    a = SSAH(**params("ssah", max_iter=2)).fit(Xtr, ytr).encode(Xte)
    b = SSAH(**params("ssah", max_iter=2)).fit(Xtr, onehot).encode(Xte)
    assert np.array_equal(a, b)


def test_anchor_rbf_blocks_and_sigma_rule(digits):
    Xtr = digits[0][:300]
    rbf = AnchorRBF(n_anchors=40, block_size=7, random_state=0)
    Phi = rbf.fit_transform(Xtr)
    d2 = ((Xtr[:, None, :] - rbf.anchors_[None]) ** 2).sum(-1)
    # σ skips each anchor's distance to itself: rows drawn as anchors use the nearest other one.
    self_pairs = np.argwhere(np.all(Xtr[:, None, :] == rbf.anchors_[None], axis=-1))
    assert len(self_pairs) == 40
    other = d2.copy()
    other[self_pairs[:, 0], self_pairs[:, 1]] = np.inf
    # Distances come from float32 BLAS: σ agrees with the float64 rule to ~1e-5 relatively.
    assert rbf.sigma_ == pytest.approx(np.sqrt(other.min(axis=1)).mean(), rel=1e-4)
    assert rbf.sigma_ > np.sqrt(d2.min(axis=1)).mean()
    dense = np.exp(-d2 / (2 * rbf.sigma_**2))
    assert np.allclose(Phi, dense - dense.mean(axis=0), atol=1e-6)
    assert np.allclose(rbf.transform(Xtr), Phi, atol=1e-6)
    km = AnchorRBF(n_anchors=40, anchors="kmeans", random_state=0).fit(Xtr)
    assert nearest_anchor_sigma(Xtr, km.anchors_) < rbf.sigma_  # k-means covers data better


BAD_INPUTS = [
    ({"y": None}, "needs labels"),
    ({"y": "nan"}, "missing"),
    ({"y": "fraction"}, "non-integer"),
    ({"y": "one-class"}, "single class"),
    ({"y": "empty-row"}, "no label"),
    ({"y": "short"}, "one label entry per sample"),
    ({"X": "nan"}, "NaN"),
    ({"n_anchors": 5000}, "n_anchors=5000"),
]


@pytest.mark.parametrize(("case", "message"), BAD_INPUTS)
@pytest.mark.parametrize("name", ["ssah", "sdh", "fsdh", "ksh", "cca-itq"])
def test_bad_inputs_raise_clear_errors(digits, case, message, name):
    Xtr, ytr, _, _ = digits
    X, y = Xtr[:200].copy(), ytr[:200].astype(float)
    kw = params(name)
    if "n_anchors" in case:
        if name == "cca-itq":
            return
        kw["n_anchors"] = case["n_anchors"]
    if case.get("X") == "nan":
        X[5, 3] = np.nan
    if "y" in case:
        if case["y"] is None:
            y = None
        elif case["y"] == "nan":
            y[7] = np.nan
        elif case["y"] == "fraction":
            y[7] = 0.5
        elif case["y"] == "one-class":
            y[:] = 3
        elif case["y"] == "short":
            y = y[:-1]
        else:
            y = np.eye(10)[ytr[:200]]
            y[11] = 0
    with pytest.raises(HashlearnInputError, match=message):
        make_method(name, **kw).fit(X, y)


def test_ssah_rejects_negative_smoothing(digits):
    Xtr, ytr, _, _ = digits
    with pytest.raises(HashlearnInputError, match="smoothing"):
        SSAH(smoothing=-1e-3, **SMALL).fit(Xtr, ytr)


@pytest.mark.parametrize("p", [0, -1.0, 2.5, float("nan"), "1"])
def test_ssah_rejects_p_outside_0_2(digits, p):
    Xtr, ytr, _, _ = digits
    with pytest.raises(HashlearnInputError, match=r"'p' parameter of SSAH must be a float in"):
        SSAH(p=p, **SMALL).fit(Xtr, ytr)


@pytest.mark.parametrize("name", METHODS)
def test_query_dimension_mismatch(digits, name):
    Xtr, ytr, Xte, _ = digits
    model = make_method(name, **params(name, max_iter=1)).fit(Xtr, ytr)
    with pytest.raises(HashlearnInputError, match="fitted on 64"):
        model.encode(Xte[:, :50])
    with pytest.raises(HashlearnInputError, match="NaN"):
        model.encode(np.full((2, 64), np.nan))


@pytest.mark.parametrize("name", ["ssah", "sdh", "cca-itq"])
def test_blas_threads_validated_and_immaterial(digits, name):
    """blas_threads only limits BLAS threads: bad values raise, and with the library's own
    thread count the codes are those of the single-threaded default (up to float round-off,
    so allow a sliver of flipped bits)."""
    Xtr, ytr, Xte, _ = digits
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(HashlearnInputError, match="blas_threads"):
            make_method(name, **params(name, max_iter=2, blas_threads=bad)).fit(Xtr, ytr)
    one = make_method(name, **params(name, max_iter=2)).fit(Xtr, ytr)
    free = make_method(name, **params(name, max_iter=2, blas_threads=None)).fit(Xtr, ytr)
    assert one.blas_threads == 1
    flipped = np.mean(np.unpackbits(one.encode(Xte) ^ free.encode(Xte)))
    assert flipped < 0.01


@pytest.mark.parametrize("name", ["ssah", "sdh", "fsdh", "cca-itq"])
def test_labels_as_users_have_them(digits, name):
    """1-D labels are categories: strings, non-contiguous ids, numeric objects and a subset in
    which a class id never occurs all give the codes of the same classes numbered 0..c-1;
    an all-zero multi-hot column is a class that does not occur."""
    Xtr, ytr, Xte, _ = digits
    keep = ytr != 3  # class 3 absent from this training subset
    X, y = Xtr[keep][:400], ytr[keep][:400]
    kw = params(name, max_iter=2)
    reference = make_method(name, **kw).fit(X, np.unique(y, return_inverse=True)[1]).encode(Xte)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"])
    variants = {
        "absent id": y,
        "sparse ids": y * 1000 + 7,
        "strings": names[np.searchsorted(np.unique(y), y)],
        "numeric objects": y.astype(object),
        "multi-hot with an empty column": np.eye(10)[y],
    }
    for what, labels in variants.items():
        codes = make_method(name, **kw).fit(X, labels).encode(Xte)
        assert np.array_equal(codes, reference), what
