"""Tests for the IDX reader, Fashion-MNIST lookup, verified download and its split protocols.

Uses the real Fashion-MNIST files of Debian's ``dataset-fashion-mnist`` package; downloads are
exercised against local ``file://`` and ``http://127.0.0.1`` mirrors made from those files.
"""

from __future__ import annotations

import filecmp
import functools
import gzip
import hashlib
import http.server
import shutil
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from hashlearn._io import HashlearnFileError
from hashlearn.data import fashion_mnist as fm
from hashlearn.data import load_dataset, read_idx
from hashlearn.data.download import download_file
from hashlearn.data.idx import load_idx
from hashlearn.data.splits import draw_splits

NAME = fm.NAME

SYSTEM = fm.find_files()[0] or {}  # file key -> path of the locally installed files
needs_files = pytest.mark.skipif(
    not SYSTEM,
    reason="Fashion-MNIST files not installed (sudo apt-get install dataset-fashion-mnist)",
)


def idx_bytes(arr: np.ndarray, type_code: int) -> bytes:
    header = bytes([0, 0, type_code, arr.ndim]) + np.array(arr.shape, ">u4").tobytes()
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def stage(folder: Path, replace: dict[str, bytes] | None = None) -> Path:
    """A folder of symlinks to the system files, with some files replaced by given bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    replace = replace or {}
    for key, (stem, *_) in fm.FILES.items():
        dest = folder / f"{stem}.gz"
        if stem in replace:
            dest.write_bytes(replace[stem])
        else:
            dest.symlink_to(SYSTEM[key])
    return folder


@pytest.fixture(scope="module")
def hashing():
    return load_dataset("fashion-mnist", progress=False)


@pytest.fixture(scope="module")
def official():
    return load_dataset("fashion-mnist", protocol="official", progress=False)


# ---------------------------------------------------------------- IDX reader


@pytest.mark.parametrize(
    "arr, code",
    [
        (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08),
        (np.array([-5, 7, 1 << 20], dtype=np.int32), 0x0C),
        (np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2), 0x0D),
    ],
)
def test_read_idx_roundtrip_plain_and_gzip(tmp_path, arr, code):
    data = idx_bytes(arr, code)
    (tmp_path / "a.idx").write_bytes(data)
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(data))
    for name in ("a.idx", "a.idx.gz"):
        out = read_idx(tmp_path / name)
        assert out.dtype == arr.dtype and out.dtype.isnative
        np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d[:-5], r"truncated: header announces shape \(2, 3, 4\) = 24 data bytes but 19"),
        (lambda d: d + b"\0\0", "longer than its header says"),
        (lambda d: b"\x1f\x00" + d[2:], "bad magic number"),
        (lambda d: d[:2] + b"\x07" + d[3:], "unknown IDX type code 0x07"),
        (lambda d: d[:10], "announces 3 dimensions but the file ends at byte 10"),
        (lambda d: d[:3], "too short"),
        (lambda d: gzip.compress(d)[:-12], "damaged gzip"),
        (lambda d: b"\x1f\x8b" + b"garbage" * 5, "damaged gzip"),
    ],
)
def test_read_idx_rejects_corrupted_files(tmp_path, mutate, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(mutate(idx_bytes(np.zeros((2, 3, 4), np.uint8), 0x08)))
    with pytest.raises(HashlearnFileError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_load_idx_checksum(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(idx_bytes(np.arange(3, dtype=np.uint8), 0x08))
    _, digest = load_idx(path)
    assert read_idx(path, digest).tolist() == [0, 1, 2]
    with pytest.raises(HashlearnFileError, match="wrong contents: SHA-256"):
        read_idx(path, "0" * 64)


# ---------------------------------------------------------------- protocols


@needs_files
def test_hashing_protocol(hashing):
    ds = hashing
    sizes = (len(ds.train), len(ds.val), len(ds.query), len(ds.database))
    assert sizes == (5000, 1000, 1000, 68000)
    for split, per_class in ((ds.train, 500), (ds.val, 100), (ds.query, 100)):
        assert (np.bincount(split.y, minlength=10) == per_class).all()
    held = np.concatenate([ds.query.indices, ds.val.indices, ds.database.indices])
    assert np.array_equal(np.sort(held), np.arange(70000))
    assert np.isin(ds.train.indices, ds.database.indices).all()
    assert ds.query.X.shape == (1000, 784) and ds.query.X.dtype == np.float32
    assert ds.query.images.shape == (1000, 28, 28) and ds.query.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.query.X * 255, ds.query.images.reshape(1000, -1))
    assert ds.class_names[9] == "Ankle boot"
    m = ds.manifest
    assert m["protocol"] == "hashing" and m["splits"]["val"]["per_class"] == [100] * 10
    assert {r["file"] for r in m["sources"]} == {v[0] for v in fm.FILES.values()}
    assert {r["content_sha256"] for r in m["sources"]} == {v[2] for v in fm.FILES.values()}


@needs_files
def test_h2q_and_hswd_protocols_hold_training_images_out_of_the_database():
    h2q = load_dataset("fashion-mnist", protocol="h2q", split_seed=2, progress=False)
    assert (len(h2q.train), len(h2q.val), len(h2q.query), len(h2q.database)) == (
        5000, 1000, 1000, 63000,
    )  # fmt: skip
    pooled = np.concatenate([s.indices for s in h2q.splits().values()])
    assert np.array_equal(np.sort(pooled), np.arange(70000))  # disjoint, and every image
    for split, per_class in ((h2q.train, 500), (h2q.val, 100), (h2q.query, 100)):
        assert (np.bincount(split.y, minlength=10) == per_class).all()
    assert h2q.manifest["protocol_parameters"]["map_topk"] == 5000
    hswd = load_dataset("fashion-mnist", protocol="hswd", split_seed=2, progress=False)
    assert hswd.val is None
    assert (len(hswd.train), len(hswd.query), len(hswd.database)) == (5000, 1000, 64000)
    pooled = np.concatenate([s.indices for s in hswd.splits().values()])
    assert np.array_equal(np.sort(pooled), np.arange(70000))
    assert hswd.manifest["protocol_parameters"]["map_topk"] is None
    again = load_dataset("fashion-mnist", protocol="hswd", split_seed=2, progress=False)
    np.testing.assert_array_equal(again.train.indices, hswd.train.indices)


@needs_files
def test_split_reproducible_bit_for_bit(hashing):
    y = np.empty(70000, np.int64)
    for split in hashing.splits().values():
        y[split.indices] = split.y
    counts = fm.HASHING.counts(10)
    redo = draw_splits(y, np.random.default_rng(0), **counts)
    for key, split in hashing.splits().items():
        np.testing.assert_array_equal(redo[key], split.indices)
    other = draw_splits(y, np.random.default_rng(1), **counts)
    assert not np.array_equal(other["query"], hashing.query.indices)


@needs_files
def test_official_protocol(official):
    ds = official
    assert ds.train is ds.database and ds.val is None
    np.testing.assert_array_equal(ds.train.indices, np.arange(60000))
    np.testing.assert_array_equal(ds.query.indices, np.arange(60000, 70000))
    test_labels = read_idx(SYSTEM["test_labels"])
    np.testing.assert_array_equal(ds.query.y, test_labels)
    test_images = read_idx(SYSTEM["test_images"])
    np.testing.assert_array_equal(ds.query.images[::997], test_images[::997])


# ---------------------------------------------------------------- lookup and errors


@needs_files
def test_search_order(monkeypatch, tmp_path):
    monkeypatch.setenv("HASHLEARN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dirs = fm.search_dirs()
    assert dirs[:3] == [
        tmp_path / "data" / "fashion-mnist",
        tmp_path / "data",
        tmp_path / "cache" / "hashlearn" / "fashion-mnist",
    ]
    assert dirs[3:] == list(fm.debian_dirs())
    debian = next((str(d) for d in fm.debian_dirs() if len(fm._files_in(d)) == 4), None)
    assert fm.locate() == debian  # nothing in the user folders yet
    stage(tmp_path / "data")  # files directly in $HASHLEARN_DATA
    assert fm.locate() == str(tmp_path / "data")
    assert fm.download_dir() == tmp_path / "data" / "fashion-mnist"
    assert fm.search_dirs(tmp_path / "mine") == [tmp_path / "mine", tmp_path / "mine" / NAME]


@needs_files
def test_not_found_says_where_it_looked_and_how_to_fix(tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(SYSTEM["test_labels"], partial / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(HashlearnFileError) as info:
        load_dataset("fashion-mnist", data_dir=partial, download=False)
    msg = str(info.value)
    assert f"{partial} (has 1 of 4 files; missing train-labels-idx1-ubyte" in msg
    assert f"{partial / NAME} (does not exist)" in msg
    assert "sudo apt-get install dataset-fashion-mnist" in msg and "HASHLEARN_DATA" in msg


@needs_files
def test_corrupted_local_file_is_named(tmp_path):
    good = SYSTEM["train_labels"].read_bytes()
    folder = stage(tmp_path / "d", {"train-labels-idx1-ubyte": good[: len(good) // 2]})
    with pytest.raises(HashlearnFileError) as info:
        load_dataset("fashion-mnist", data_dir=folder, download=False)
    msg = str(info.value)
    assert "train-labels-idx1-ubyte.gz is a damaged gzip file" in msg
    assert "Delete" in msg and "--reinstall dataset-fashion-mnist" in msg
    # a well-formed IDX file with different contents fails the checksum
    labels = read_idx(SYSTEM["train_labels"])
    labels[0] = (labels[0] + 1) % 10
    folder = stage(tmp_path / "e", {"train-labels-idx1-ubyte": idx_bytes(labels, 0x08)})
    with pytest.raises(HashlearnFileError, match="wrong contents: SHA-256"):
        load_dataset("fashion-mnist", data_dir=folder, download=False)


# ---------------------------------------------------------------- download


@needs_files
def test_download_from_mirror(monkeypatch, tmp_path):
    monkeypatch.setenv(fm.URL_ENV, stage(tmp_path / "mirror").as_uri())
    target = tmp_path / "fresh"
    paths = fm._download_all(target, progress=False)
    for key, (stem, *_) in fm.FILES.items():
        assert filecmp.cmp(target / f"{stem}.gz", SYSTEM[key], shallow=False)
        mode = stat.S_IMODE((target / f"{stem}.gz").stat().st_mode)
        assert mode & stat.S_IRUSR and mode & stat.S_IRGRP  # not mkstemp's private 0600
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in paths.values())
    assert fm.locate(target) == str(target)


@needs_files
def test_download_rejects_bad_checksum_and_keeps_nothing(monkeypatch, tmp_path):
    labels = read_idx(SYSTEM["test_labels"])
    labels[:10] = 0
    mirror = stage(
        tmp_path / "mirror", {"t10k-labels-idx1-ubyte": gzip.compress(idx_bytes(labels, 0x08))}
    )
    monkeypatch.setenv(fm.URL_ENV, mirror.as_uri())
    target = tmp_path / "target"
    with pytest.raises(HashlearnFileError) as info:
        load_dataset("fashion-mnist", data_dir=target, progress=False)
    msg = str(info.value)
    assert "download into" in msg and "wrong contents: SHA-256" in msg
    assert "sudo apt-get install dataset-fashion-mnist" in msg
    assert list(target.iterdir()) == []  # neither the bad file nor a temporary is left


def test_download_failure_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv(fm.URL_ENV, (tmp_path / "no-such-mirror").as_uri())
    with pytest.raises(HashlearnFileError, match="download of file:.*failed.*retry when online"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "t", progress=False)


def test_download_file_over_http(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    payload = np.random.default_rng(0).bytes(200_000)
    (served / "blob.bin").write_bytes(payload)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/blob.bin"
        md5 = download_file(url, tmp_path / "out" / "blob.bin", progress=True)
        assert (tmp_path / "out" / "blob.bin").read_bytes() == payload
        assert md5 == hashlib.md5(payload).hexdigest()

        def reject(path):
            raise HashlearnFileError("rejected by verify")

        with pytest.raises(HashlearnFileError, match="rejected"):
            download_file(url, tmp_path / "out2" / "blob.bin", verify=reject, progress=False)
        assert list((tmp_path / "out2").iterdir()) == []
        with pytest.raises(HashlearnFileError, match="download of .*missing.bin failed"):
            download_file(url.replace("blob", "missing"), tmp_path / "o3" / "m", progress=False)
    finally:
        server.shutdown()
        server.server_close()
