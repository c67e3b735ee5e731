"""The one labels module: 1-D labels of any values are categories, 2-D are multi-hot."""

from __future__ import annotations

import numpy as np
import pytest

from hashlearn._labels import check_labels, encode_labels, labels_to_multihot
from hashlearn._validation import HashlearnInputError
from hashlearn.metrics import mean_average_precision


def test_encode_labels_orders_categories_by_value():
    ids, n_classes, names = encode_labels(np.array(["dog", "cat", "dog", "emu"]))
    assert ids.tolist() == [1, 0, 1, 2] and n_classes == 3 and names == ["cat", "dog", "emu"]
    ids, n_classes, _ = encode_labels(np.array([10**9, 5, 5, 10**9], dtype=object))
    assert ids.tolist() == [1, 0, 0, 1] and n_classes == 2 and ids.dtype == np.int64
    ids, _, names = encode_labels(np.array([[2.0], [-1.0], [2.0]]))  # column vector, floats
    assert ids.tolist() == [1, 0, 1] and names == ["-1", "2"]
    multi = np.array([[1, 0, 1], [0, 0, 1]])
    hot, n_classes, _ = encode_labels(multi)
    assert hot.dtype == np.uint8 and n_classes == 3 and np.array_equal(hot, multi)


@pytest.mark.parametrize(
    "y, message",
    [
        (None, "required"),
        (np.array([0, 1.5]), "non-integer"),
        (np.array([0.0, np.nan]), "missing"),
        (np.array([1, None], dtype=object), "missing"),
        (np.array([[0, 2]]), "multi-hot"),
        (np.zeros((2, 2, 2)), "1-D labels or a 2-D"),
        (np.array([1j, 2j]), "Complex"),
    ],
)
def test_bad_labels_get_clear_errors(y, message):
    with pytest.raises(HashlearnInputError, match=message):
        encode_labels(y)


def test_labels_to_multihot_with_and_without_a_fixed_class_set():
    assert labels_to_multihot(np.array(["b", "a", "b"])).tolist() == [[0, 1], [1, 0], [0, 1]]
    fixed = labels_to_multihot(np.array([0, 3]), 5, dtype=np.float32)
    assert fixed.shape == (2, 5) and fixed.dtype == np.float32 and fixed[1, 3] == 1
    with pytest.raises(HashlearnInputError, match="integer class ids"):
        labels_to_multihot(np.array(["a"]), 5)
    with pytest.raises(HashlearnInputError, match="columns but n_classes=4"):
        labels_to_multihot(np.eye(3), 4)


def test_check_labels_keeps_the_classes_that_occur():
    Y = check_labels(np.array([7, 9, 7, 42]), 4)
    assert Y.shape == (4, 3) and Y.dtype == np.float64 and Y.sum(axis=1).tolist() == [1] * 4
    multi = np.array([[1, 0, 0, 1], [0, 0, 1, 1], [1, 0, 0, 0]])
    assert np.array_equal(check_labels(multi, 3), multi[:, [0, 2, 3]])
    with pytest.raises(HashlearnInputError, match="requires y to be passed"):
        check_labels(None, 3)
    with pytest.raises(HashlearnInputError, match="single class"):
        check_labels(np.array(["a", "a"]), 2)


def test_metrics_read_string_and_sparse_labels_as_categories():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (60, 2), dtype=np.uint8)
    ids = rng.integers(0, 4, 60)
    words = np.array(["ant", "bee", "cow", "dog"])[ids]
    base = mean_average_precision(codes[:10], codes[10:], ids[:10], ids[10:])
    for labels in (words, ids * 10**9 + 3, ids.astype(object)):
        assert mean_average_precision(codes[:10], codes[10:], labels[:10], labels[10:]) == base
    assert 0 < base < 1
