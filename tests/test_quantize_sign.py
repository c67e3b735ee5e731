"""SignQuantizer and the shared estimator base (clone, persistence, validation)."""

import numpy as np
import pytest
from sklearn.base import clone

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.base import BaseHasher
from hashlearn.catalogue import make_method
from hashlearn.codes import unpack
from hashlearn.quantize import SignQuantizer


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    return rng.standard_normal((200, 12)) @ rng.standard_normal((12, 12)) + 3.0


@pytest.mark.parametrize("projection", ["pca", "random", "none"])
def test_codes_are_signs_of_centred_projection(features, projection):
    n_bits = 12 if projection == "none" else 8
    model = SignQuantizer(n_bits, projection=projection, random_state=0).fit(features)
    projected = (features - features.mean(axis=0)) @ model.components_
    np.testing.assert_allclose(model.transform(features), projected, atol=1e-10)
    codes = unpack(model.encode(features), n_bits)
    np.testing.assert_array_equal(codes, np.where(projected > 0, 1, -1))


def test_pca_bits_are_balanced_and_uncorrelated(features):
    projected = SignQuantizer(6).fit(features).transform(features)
    np.testing.assert_allclose(projected.mean(axis=0), 0, atol=1e-9)
    cov = np.cov(projected.T)
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-8)
    assert (np.diff(np.diag(cov)) <= 1e-9).all()  # ordered by variance


def test_random_projection_is_seeded(features):
    a = SignQuantizer(8, projection="random", random_state=3).fit(features).encode(features)
    b = SignQuantizer(8, projection="random", random_state=3).fit(features).encode(features)
    c = SignQuantizer(8, projection="random", random_state=4).fit(features).encode(features)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_clone_get_params_and_registry(features):
    model = SignQuantizer(8, projection="random", random_state=1)
    assert clone(model).get_params() == model.get_params()
    assert isinstance(make_method("sign", n_bits=8, random_state=0), SignQuantizer)


def test_save_load_round_trip(tmp_path, features):
    model = SignQuantizer(8).fit(features)
    model.save(tmp_path / "sign.npz")
    for loaded in (
        SignQuantizer.load(tmp_path / "sign.npz"),
        BaseHasher.load(tmp_path / "sign.npz"),
    ):
        assert isinstance(loaded, SignQuantizer)
        np.testing.assert_array_equal(loaded.encode(features), model.encode(features))


def test_load_rejects_damaged_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(HashlearnFileError, match="corrupted"):
        SignQuantizer.load(path)


def test_save_into_missing_folder_is_a_clear_error(tmp_path, features):
    with pytest.raises(HashlearnFileError, match="does not exist"):
        SignQuantizer(4).fit(features).save(tmp_path / "missing" / "m.npz")


@pytest.mark.parametrize(
    "model, X, message",
    [
        (SignQuantizer(20), None, "larger than the 12"),
        (SignQuantizer(8, projection="none"), None, "one bit per feature"),
        (SignQuantizer(8, projection="magic"), None, "'projection' parameter of SignQuantizer"),
        (SignQuantizer(0), None, "'n_bits' parameter of SignQuantizer must be an int"),
        (SignQuantizer(4), np.array([[1.0, np.nan], [2.0, 3.0]]), "NaN"),
        (SignQuantizer(4), np.ones(5), "2-D"),
        (SignQuantizer(4), np.ones((0, 3)), "at least 2"),
        (SignQuantizer(2), np.ones((1, 3)), "at least 2"),
    ],
)
def test_bad_input_gets_clear_errors(features, model, X, message):
    with pytest.raises(HashlearnInputError, match=message):
        model.fit(features if X is None else X)


def test_transform_checks_feature_count(features):
    model = SignQuantizer(4).fit(features)
    with pytest.raises(HashlearnInputError, match="fitted on 12"):
        model.encode(features[:, :5])


def test_fit_runs_with_one_blas_thread_and_restores_the_setting(features):
    from threadpoolctl import threadpool_info

    from hashlearn._threads import limit_blas_threads

    seen = []

    class Probe(SignQuantizer):
        @limit_blas_threads
        def fit(self, X, y=None):
            seen.append([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"])
            return super().fit(X, y)

    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    Probe(4).fit(features)
    assert seen[0] and all(n == 1 for n in seen[0])
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


def test_sparse_and_complex_input_get_clear_errors(features):
    from scipy import sparse

    with pytest.raises(HashlearnInputError, match="sparse"):
        SignQuantizer(4).fit(sparse.csr_matrix(features))
    with pytest.raises(HashlearnInputError, match="complex"):
        SignQuantizer(4).fit(features + 1j)
