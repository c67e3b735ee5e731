"""CIFAR-10 readers on tiny files written here in both official formats (no download)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.cli.main import main
from hashlearn.data import cifar10, load_dataset

PER_CLASS_TRAIN, PER_CLASS_TEST = 60, 10  # tiny: 600 training + 100 test images
NAMES = [f"class{c}" for c in range(10)]


def make_pool(per_class_train: int = PER_CLASS_TRAIN, per_class_test: int = PER_CLASS_TEST):
    """Random images (n, 32, 32, 3) and shuffled balanced labels, train then test."""
    rng = np.random.default_rng(0)
    y_train = rng.permutation(np.repeat(np.arange(10), per_class_train))
    y_test = rng.permutation(np.repeat(np.arange(10), per_class_test))
    images = rng.integers(0, 256, (len(y_train) + len(y_test), 32, 32, 3), dtype=np.uint8)
    return images, np.concatenate([y_train, y_test]), len(y_train)


def batches(images: np.ndarray, y: np.ndarray, n_train: int):
    """The pool cut like the archive: five training batches, then the test batch."""
    cuts = np.linspace(0, n_train, 6).astype(int)
    parts = [(f"data_batch_{i + 1}", cuts[i], cuts[i + 1]) for i in range(5)]
    return parts + [("test_batch", n_train, len(y))]


def planes(images: np.ndarray) -> np.ndarray:
    """(n, 32, 32, 3) -> (n, 3072) R plane, G plane, B plane, each row-major."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def write_bin(folder: Path, images: np.ndarray, y: np.ndarray, n_train: int) -> Path:
    folder.mkdir(parents=True)
    for stem, a, b in batches(images, y, n_train):
        records = np.concatenate([y[a:b, None].astype(np.uint8), planes(images[a:b])], axis=1)
        records.tofile(folder / f"{stem}.bin")
    (folder / "batches.meta.txt").write_text("\n".join(NAMES) + "\n\n")
    return folder


def write_py(folder: Path, images: np.ndarray, y: np.ndarray, n_train: int) -> Path:
    folder.mkdir(parents=True)
    for stem, a, b in batches(images, y, n_train):
        batch = {
            b"batch_label": stem.encode(),
            b"labels": [int(v) for v in y[a:b]],
            b"data": planes(images[a:b]),
            b"filenames": [f"img{i}.png".encode() for i in range(a, b)],
        }
        (folder / stem).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [n.encode() for n in NAMES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


@pytest.fixture(scope="module")
def pool():
    return make_pool()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $HASHLEARN_DATA and an empty user cache, so only data_dir is found."""
    monkeypatch.delenv("HASHLEARN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_binary_and_python_archives_give_the_same_pool(pool, isolated):
    images, y, n_train = pool
    write_bin(isolated / "b" / "cifar-10-batches-bin", images, y, n_train)
    write_py(isolated / "p" / "cifar-10-batches-py", images, y, n_train)
    from_bin = load_dataset("cifar10", protocol="official", data_dir=isolated / "b")
    from_py = load_dataset("cifar10", protocol="official", data_dir=isolated / "p")
    for ds in (from_bin, from_py):
        assert ds.class_names == NAMES
        np.testing.assert_array_equal(ds.train.images, images[:n_train])
        np.testing.assert_array_equal(ds.query.images, images[n_train:])
        np.testing.assert_array_equal(ds.query.y, y[n_train:])
        assert ds.train.images.shape[1:] == (32, 32, 3) and ds.train.images.dtype == np.uint8
        np.testing.assert_allclose(ds.query.X[3], images[n_train + 3].reshape(-1) / 255.0)
        splits = [(r["official_split"], tuple(r["pool_range"])) for r in ds.manifest["sources"]]
        assert splits[-1] == ("test", (n_train, len(y)))
        assert all(s == "train" for s, _ in splits[:-1])
    # tiny test files are not the official ones: recorded, not hidden
    assert all(r["official_md5_match"] is False for r in from_py.manifest["sources"])


def test_data_dir_may_be_the_batches_folder_itself_or_hashlearn_data(pool, isolated, monkeypatch):
    images, y, n_train = pool
    folder = write_bin(isolated / "cifar-10-batches-bin", images, y, n_train)
    direct = load_dataset("cifar10", protocol="official", data_dir=folder)
    assert cifar10.locate(folder) == str(folder)
    monkeypatch.setenv("HASHLEARN_DATA", str(isolated))
    via_env = load_dataset("cifar10", protocol="official")
    np.testing.assert_array_equal(direct.train.images, via_env.train.images)


def test_protocols_h2q_and_hswd_sizes_seeds_and_map_cutoff(isolated):
    # 750 images per class: H2Q's 100 query + 100 val + 500 train per class and 50 more
    images, y, n_train = make_pool(per_class_train=650, per_class_test=100)
    write_bin(isolated / "cifar-10-batches-bin", images, y, n_train)
    h2q = load_dataset("cifar10", split_seed=3, protocol="h2q", data_dir=isolated)
    assert (len(h2q.query), len(h2q.val), len(h2q.train)) == (1000, 1000, 5000)
    assert len(h2q.database) == 7500 - 7000
    assert not np.isin(h2q.train.indices, h2q.database.indices).any()  # train held out
    assert np.bincount(h2q.query.y, minlength=10).tolist() == [100] * 10
    assert h2q.manifest["protocol_parameters"]["map_topk"] == 5000
    assert h2q.map_topk == 5000 and h2q.resolve_topk() == 500  # capped at the database

    hswd = load_dataset("cifar10", split_seed=3, protocol="hswd", data_dir=isolated)
    assert (len(hswd.query), len(hswd.train), len(hswd.database)) == (1000, 5000, 1500)
    assert hswd.val is None
    pooled = np.concatenate([hswd.query.indices, hswd.train.indices, hswd.database.indices])
    assert len(np.unique(pooled)) == 7500  # train held out of the database
    assert np.bincount(hswd.train.y, minlength=10).tolist() == [500] * 10
    assert hswd.manifest["protocol_parameters"]["map_topk"] is None
    assert hswd.manifest["protocol_parameters"]["train_in_database"] is False

    again = load_dataset("cifar10", split_seed=3, protocol="hswd", data_dir=isolated)
    other = load_dataset("cifar10", split_seed=4, protocol="hswd", data_dir=isolated)
    np.testing.assert_array_equal(again.train.indices, hswd.train.indices)
    assert not np.array_equal(other.train.indices, hswd.train.indices)


def test_evaluate_uses_the_protocol_map_cutoff_unless_given(isolated, capsys):
    images, y, n_train = make_pool(per_class_train=650, per_class_test=100)
    write_bin(isolated / "cifar-10-batches-bin", images, y, n_train)
    out = isolated / "h2q.json"
    args = ["evaluate", "--dataset", "cifar10", "--data-dir", str(isolated), "--quiet"]
    args += ["--method", "lsh", "--bits", "8", "--protocol", "h2q", "--output", str(out)]
    assert main(args) == 0
    # mAP@5000, capped at this small pool's 500-image database
    assert json.loads(out.read_text())["topk"] == 500
    assert "mAP@500" in capsys.readouterr().out
    h2q = load_dataset("cifar10", protocol="h2q", data_dir=isolated)
    hswd = load_dataset("cifar10", protocol="hswd", data_dir=isolated)
    assert h2q.resolve_topk("all") is None and h2q.resolve_topk(100) == 100
    assert hswd.resolve_topk() is None  # mAP@all


def test_a_pickle_that_runs_code_is_refused_not_executed(pool, isolated):
    images, y, n_train = pool
    folder = write_py(isolated / "cifar-10-batches-py", images, y, n_train)
    marker = isolated / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(HashlearnFileError, match="refused, not executed") as err:
        load_dataset("cifar10", data_dir=isolated, download=False)
    assert "data_batch_3" in str(err.value) and "system" in str(err.value)
    assert not marker.exists()


def test_a_pickle_of_the_wrong_shape_and_a_truncated_binary_are_reported(pool, isolated):
    images, y, n_train = pool
    folder = write_py(isolated / "p" / "cifar-10-batches-py", images, y, n_train)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": [1, 2, 3]}, protocol=2))
    with pytest.raises(HashlearnFileError, match="test_batch is not a CIFAR-10 batch"):
        load_dataset("cifar10", data_dir=isolated / "p", download=False)
    folder = write_bin(isolated / "b" / "cifar-10-batches-bin", images, y, n_train)
    raw = (folder / "data_batch_2.bin").read_bytes()
    (folder / "data_batch_2.bin").write_bytes(raw[:-5])
    with pytest.raises(HashlearnFileError, match="data_batch_2.bin .*3073-byte"):
        load_dataset("cifar10", data_dir=isolated / "b", download=False)


def test_missing_files_name_every_place_looked_and_how_to_get_them(isolated):
    with pytest.raises(HashlearnFileError) as err:
        load_dataset("cifar10", data_dir=isolated / "nowhere", download=False)
    text = str(err.value)
    assert str(isolated / "nowhere" / "cifar-10-batches-bin") in text
    assert str(isolated / "nowhere" / "cifar-10-batches-py") in text
    assert "cifar-10-binary.tar.gz" in text


def _archive(tmp: Path, images, y, n_train) -> Path:
    src = write_bin(tmp / "src" / "cifar-10-batches-bin", images, y, n_train)
    archive = tmp / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-bin")
    return archive


def test_archive_is_verified_then_unpacked_and_a_bad_checksum_refused(pool, isolated, monkeypatch):
    images, y, n_train = pool
    archive = _archive(isolated, images, y, n_train)
    data_dir = isolated / "data"
    data_dir.mkdir()
    (data_dir / archive.name).write_bytes(archive.read_bytes())
    with pytest.raises(HashlearnFileError, match="MD5.*c32a1d4ab5d03f1284b67883e8d87530"):
        load_dataset("cifar10", data_dir=data_dir, download=False)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(cifar10.ARCHIVES, "bin", (*cifar10.ARCHIVES["bin"][:2], md5))
    ds = load_dataset("cifar10", protocol="official", data_dir=data_dir, download=False)
    assert (data_dir / "cifar-10-batches-bin" / "test_batch.bin").is_file()
    np.testing.assert_array_equal(ds.query.images, images[n_train:])


def test_download_checks_the_md5_before_keeping_the_archive(pool, isolated, monkeypatch):
    images, y, n_train = pool
    archive = _archive(isolated / "mirror", images, y, n_train)
    monkeypatch.setenv(cifar10.URL_ENV, archive.parent.as_uri())
    target = isolated / "target"
    with pytest.raises(HashlearnFileError, match="download into .* failed"):
        load_dataset("cifar10", data_dir=target, progress=False)
    assert not (target / archive.name).exists()
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(cifar10.ARCHIVES, "bin", (*cifar10.ARCHIVES["bin"][:2], md5))
    ds = load_dataset("cifar10", protocol="official", data_dir=target, progress=False)
    np.testing.assert_array_equal(ds.train.y, y[:n_train])


def test_unknown_protocol_lists_the_choices(pool, isolated):
    images, y, n_train = pool
    write_bin(isolated / "cifar-10-batches-bin", images, y, n_train)
    with pytest.raises(HashlearnInputError, match="h2q, hswd, official"):
        load_dataset("cifar10", protocol="hashnet", data_dir=isolated)


def test_h2q_protocol_sizes_on_a_full_size_cifar_like_label_array():
    # The H2Q authors' split (Lucas-Schwengber/h2q src/data/process/CIFAR_10.py): per class
    # 500 train, 100 query, 100 val; the database is the other 53,000 images.
    y = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 6000))
    assert cifar10.H2Q.sizes(10, len(y)) == {
        "train": 5000, "query": 1000, "val": 1000, "database": 53000
    }  # fmt: skip
    splits = cifar10.H2Q.draw(y, 10, split_seed=0)
    sizes = {name: len(rows) for name, rows in splits.items()}
    assert sizes == {"train": 5000, "query": 1000, "val": 1000, "database": 53000}
    pooled = np.concatenate(list(splits.values()))
    assert len(np.unique(pooled)) == 60000  # disjoint and covering: train not in the database
    for name, per_class in (("train", 500), ("query", 100), ("val", 100)):
        assert np.bincount(y[splits[name]], minlength=10).tolist() == [per_class] * 10
    hswd = cifar10.HSWD.draw(y, 10, split_seed=0)
    assert {n: len(r) for n, r in hswd.items() if r is not None} == {
        "train": 5000, "query": 1000, "database": 54000
    }  # fmt: skip
