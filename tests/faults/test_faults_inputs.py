"""Inputs that used to give silently wrong results: CSV label columns, single rows, 1e±300."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.base import BaseHasher
from hashlearn.catalogue import available_methods, make_method
from hashlearn.cli.main import main
from hashlearn.data import read_arrays

KERNEL = {"sdh", "fsdh", "ssah", "ssah-svd", "ksh"}


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    return X[:300] + rng.random((300, 64)), y[:300]


def make(name, n_bits=16):
    extra = {"n_anchors": 60} if name in KERNEL else {}
    return make_method(name, n_bits=n_bits, random_state=0, **extra)


def test_csv_label_column_is_not_a_feature_for_unsupervised_fit(tmp_path, data, capsys):
    X, y = data
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])[y]  # fmt: skip
    rows = [",".join([*map(str, row.tolist()), name]) for row, name in zip(X[:100], names)]
    csv = tmp_path / "items.csv"
    csv.write_text("\n".join(rows) + "\n")
    model, codes = tmp_path / "m.npz", tmp_path / "c.npy"
    assert main(["fit", "--method", "itq", "--bits", "16", "--data", str(csv),
                 "--output", str(model), "--quiet"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["n_features"] == 64
    assert main(["encode", "--model", str(model), "--data", str(csv),
                 "--output", str(codes), "--quiet"]) == 0  # fmt: skip
    expected = BaseHasher.load(model).encode(X[:100])
    np.testing.assert_array_equal(np.load(codes), expected)
    Xr, yr = read_arrays(csv, require_labels=False)
    assert Xr.shape == (100, 64) and list(yr[:3]) == list(names[:3])


def test_csv_without_labels_needs_the_flag(tmp_path, data, capsys):
    X, _ = data
    csv = tmp_path / "features.csv"
    np.savetxt(csv, X[:50], delimiter=",")
    model = str(tmp_path / "m.npz")
    assert main(["fit", "--method", "pcah", "--bits", "8", "--data", str(csv),
                 "--no-csv-labels", "--output", model, "--quiet"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["n_features"] == 64
    assert read_arrays(csv, require_labels=False, csv_labels=False)[0].shape == (50, 64)
    # Read with a label column, the last feature (non-integer) is refused, not dropped.
    with pytest.raises(HashlearnFileError, match="looks like a feature"):
        read_arrays(csv, require_labels=False)


@pytest.mark.parametrize("name", available_methods())
def test_every_method_refuses_a_single_row(name, data):
    X, y = data
    with pytest.raises(HashlearnInputError, match="at least 2"):
        make(name, n_bits=1).fit(X[:1], y[:1])


@pytest.mark.parametrize("name", [m for m in available_methods() if m not in KERNEL])
@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_linear_methods_give_the_same_codes_at_any_scale(name, scale, data):
    X, y = data
    reference = make(name).fit(X, y).encode(X)
    scaled = make(name).fit(X * scale, y).encode(X * scale)
    assert (scaled == reference).mean() > 0.999  # ×1e±300 rounds a few entries differently


@pytest.mark.parametrize("name", ["h2q", "itq", "random-rotation"])
def test_row_norm_does_not_overflow_in_the_deep_case(name, data):
    X, _ = data  # n_bits = input dimension: no PCA, rows rescaled to norm √k directly
    model = make(name, n_bits=64).fit(X * 1e300)
    codes = model.encode(X * 1e300)
    assert codes.any() and (codes == make(name, n_bits=64).fit(X).encode(X)).mean() > 0.999


@pytest.mark.parametrize("name", sorted(KERNEL))
@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_kernel_methods_say_the_scale_is_the_problem(name, scale, data):
    X, y = data
    with pytest.raises(HashlearnInputError, match="largest entry has magnitude .* rescale X"):
        make(name).fit(X * scale, y)


def test_values_near_the_float_limit_are_explained(data):
    X, _ = data
    model = make("sign").fit(X)
    with pytest.raises(HashlearnInputError, match="too large to hash: .* overflow float64"):
        model.encode(X * 1e307)


@pytest.mark.parametrize("scale", [2.0**996, 2.0**-1000, 1e300, 1e-300])
def test_deep_features_at_any_scale_train_like_ordinary_ones(scale, data, tmp_path):
    pytest.importorskip("torch")
    from hashlearn.deep import TrainConfig, Trainer

    X, y = data
    X = X[:200] / 16.0

    def codes(factor, name):
        config = TrainConfig(loss="dpsh", n_bits=8, backbone="mlp", epochs=1, batch_size=64)
        trainer = Trainer(config, tmp_path / name, progress=False)
        return trainer.fit(X * factor, y[:200], n_classes=10).encode(X * factor)

    scaled, reference = codes(scale, "scaled"), codes(1.0, "plain")
    if np.log2(scale).is_integer():  # a power of two: the inputs standardise to the same bits
        np.testing.assert_array_equal(scaled, reference)
    else:
        assert (scaled == reference).mean() > 0.9


def test_deep_features_beyond_float32_after_standardising_are_explained(data, tmp_path):
    pytest.importorskip("torch")
    from hashlearn.deep import TrainConfig, Trainer

    X, y = data
    config = TrainConfig(loss="dpsh", n_bits=8, backbone="mlp", epochs=1, batch_size=64)
    hasher = Trainer(config, tmp_path / "run", progress=False).fit(X[:200], y[:200], n_classes=10)
    with pytest.raises(HashlearnInputError, match="exceeds float32's range .* scale of the train"):
        hasher.encode(X * 1e300)
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(HashlearnInputError, match="NaN or infinite values .* row 3, column 5"):
        hasher.encode(bad)


def test_public_errors_live_in_hashlearn_exceptions():
    import hashlearn
    from hashlearn import _io, _validation, exceptions
    from hashlearn.deep import config

    names = ["HashlearnInputError", "HashlearnInputTypeError", "HashlearnParameterError"]
    for name in names:  # the old import paths name the same classes
        assert getattr(_validation, name) is getattr(exceptions, name)
    assert _io.HashlearnFileError is exceptions.HashlearnFileError is hashlearn.HashlearnFileError
    assert config.TrainingDivergedError is exceptions.TrainingDivergedError
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), exceptions.HashlearnError)
    assert issubclass(exceptions.HashlearnFileError, OSError)
    with pytest.raises(exceptions.HashlearnError, match="n_bits"):
        make("itq", n_bits=0).fit(np.ones((3, 2)))
