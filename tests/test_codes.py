"""Packed codes: round trips, bit order and distances against a naive reference."""

import numpy as np
import pytest

from hashlearn import hamming_distances, pack, unpack
from hashlearn._validation import HashlearnInputError
from hashlearn.codes import as_packed


@pytest.mark.parametrize("n_bits", [1, 7, 8, 13, 64, 100, 256])
def test_pack_unpack_round_trip(n_bits):
    rng = np.random.default_rng(n_bits)
    signs = rng.choice(np.array([-1, 1], dtype=np.int8), size=(17, n_bits))
    packed = pack(signs)
    assert packed.dtype == np.uint8
    assert packed.shape == (17, -(-n_bits // 8))
    np.testing.assert_array_equal(unpack(packed, n_bits), signs)
    np.testing.assert_array_equal(
        unpack(packed, n_bits, signed=False), (signs > 0).astype(np.uint8)
    )


def test_pack_accepts_signs_bits_and_booleans_identically():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, size=(5, 20))
    np.testing.assert_array_equal(pack(bits), pack(2 * bits - 1))
    np.testing.assert_array_equal(pack(bits), pack(bits.astype(bool)))
    np.testing.assert_array_equal(pack(bits), pack(np.where(bits, 0.3, -2.5)))


def test_pack_bit_order_is_numpy_big_endian():
    bits = np.zeros((1, 16), dtype=int)
    bits[0, 0] = 1  # first bit -> most significant bit of the first byte
    bits[0, 15] = 1
    np.testing.assert_array_equal(pack(bits), [[0b10000000, 0b00000001]])


def test_hamming_distances_match_naive_reference():
    rng = np.random.default_rng(1)
    a = rng.choice([-1, 1], size=(30, 77))
    b = rng.choice([-1, 1], size=(45, 77))
    naive = (a[:, None, :] != b[None, :, :]).sum(axis=2)
    result = hamming_distances(pack(a), pack(b))
    assert result.shape == (30, 45)
    np.testing.assert_array_equal(result, naive)


def test_as_packed_packs_signs_and_keeps_uint8():
    signs = np.array([[1, -1, 1, 1, -1, -1, 1, -1, 1]])
    packed = pack(signs)
    np.testing.assert_array_equal(as_packed(signs), packed)
    assert as_packed(packed) is not None and as_packed(packed).shape == (1, 2)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: pack(np.ones(8)), "2-D"),
        (lambda: pack(np.ones((2, 0))), "zero columns"),
        (lambda: pack(np.array([[np.nan, 1.0]])), "NaN"),
        (lambda: unpack(np.ones((2, 2), dtype=np.int64), 16), "uint8"),
        (lambda: unpack(np.ones((2, 2), dtype=np.uint8), 24), "need 3"),
        (lambda: hamming_distances(np.ones((2, 2), np.uint8), np.ones((2, 3), np.uint8)), "same"),
        (lambda: pack(np.array([["a", "b"]])), "numeric"),
    ],
)
def test_bad_input_gets_clear_errors(call, message):
    with pytest.raises(HashlearnInputError, match=message):
        call()


def test_atomic_writes_leave_normal_permissions_and_no_temp_files(tmp_path):
    import os

    from hashlearn._io import write_json_atomic

    path = tmp_path / "out.json"
    write_json_atomic(path, {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
