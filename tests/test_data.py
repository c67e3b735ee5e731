"""Tests for hashlearn.data: registry, digits, split mechanism, user arrays and files, CLI."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.cli.main import main
from hashlearn.data import (
    Dataset,
    Protocol,
    available_datasets,
    from_arrays,
    from_splits,
    labels_to_multihot,
    load_dataset,
    load_files,
    read_arrays,
    register_dataset,
)
from hashlearn.data import registry as registry_module
from hashlearn.data.registry import Source
from hashlearn.data.splits import allocate, draw_splits


def check_partition(ds: Dataset, n_pool: int) -> None:
    """Query/val/database partition the pool; train lies inside the database."""
    held = [ds.query.indices] + ([] if ds.val is None else [ds.val.indices])
    everything = np.concatenate(held + [ds.database.indices])
    assert len(np.unique(everything)) == len(everything) == n_pool
    assert np.isin(ds.train.indices, ds.database.indices).all()
    for split in ds.splits().values():
        assert np.all(np.diff(split.indices) > 0)  # sorted, no duplicates


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


# ---------------------------------------------------------------- digits and the registry


def test_registry_lists_builtin_datasets():
    names = available_datasets()
    assert "digits" in names and "fashion-mnist" in names


def test_digits_hashing_protocol(digits):
    from sklearn.datasets import load_digits

    raw = load_digits()
    assert (len(digits.train), len(digits.query), len(digits.database)) == (500, 200, 1597)
    assert digits.val is None and digits.n_classes == 10 and digits.n_features == 64
    assert (np.bincount(digits.query.y) == 20).all()
    assert (np.bincount(digits.train.y) == 50).all()
    check_partition(digits, 1797)
    for split in digits.splits().values():
        assert split.X.dtype == np.float32 and split.y.dtype == np.int64
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (8, 8)
        # rows really are the source items named by the indices
        np.testing.assert_array_equal(split.y, raw.target[split.indices])
        np.testing.assert_allclose(split.X, raw.data[split.indices] / 16.0, rtol=1e-6)
        np.testing.assert_array_equal(
            split.images, np.round(raw.images[split.indices] * 255 / 16).astype(np.uint8)
        )
    assert digits.database.X.max() == 1.0 and digits.database.images.max() == 255


def test_digits_split_is_reproducible_and_seed_dependent(digits):
    again = load_dataset("digits", split_seed=0)
    other = load_dataset("digits", split_seed=1)
    for key in ("train", "query", "database"):
        np.testing.assert_array_equal(getattr(digits, key).indices, getattr(again, key).indices)
    assert not np.array_equal(digits.query.indices, other.query.indices)
    assert digits.manifest == again.manifest
    assert digits.manifest["splits"]["query"] != other.manifest["splits"]["query"]


def test_manifest_records_the_split(digits, tmp_path):
    m = digits.manifest
    assert m["dataset"] == "digits" and m["protocol"] == "hashing" and m["split_seed"] == 0
    recipe = {"name": "digits", "split_seed": 0, "protocol": "hashing"}
    assert m["load_dataset"] == recipe
    import hashlearn

    assert m["hashlearn_version"] == hashlearn.__version__
    for key, split in digits.splits().items():
        rec = m["splits"][key]
        assert rec["size"] == len(split)
        assert rec["per_class"] == np.bincount(split.y, minlength=10).tolist()
        digest = hashlib.sha256(split.indices.astype("<i8").tobytes()).hexdigest()
        assert rec["indices_sha256"] == digest
    path = tmp_path / "manifest.json"
    digits.save_manifest(path, include_indices=True)
    saved = json.loads(path.read_text())
    assert saved["splits"] == json.loads(json.dumps(m["splits"]))
    assert saved["indices"]["query"] == digits.query.indices.tolist()
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


def test_unknown_dataset_lists_known_names():
    with pytest.raises(HashlearnInputError, match="digits.*fashion-mnist"):
        load_dataset("cifar-10")


def test_bad_protocol_and_seed():
    with pytest.raises(HashlearnInputError, match="protocol 'nope'.*hashing"):
        load_dataset("digits", protocol="nope")
    for seed in (-1, 1.5, "0", True):
        with pytest.raises(HashlearnInputError, match="split_seed"):
            load_dataset("digits", split_seed=seed)


def test_register_dataset_uses_the_shared_split_mechanism(monkeypatch):
    monkeypatch.setattr(registry_module, "_DATASETS", dict(registry_module._DATASETS))
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 30)
    X = rng.normal(size=(90, 4)).astype(np.float32)

    @register_dataset(
        "toy",
        description="three blobs",
        n_classes=3,
        n_items=90,
        item_shape=(4,),
        protocols=[Protocol("p", "2 query, 1 val, 5 train per class", 2, 1, 5)],
        locate=lambda data_dir=None: "in memory",
    )
    def read_toy(*, data_dir=None, download=True, progress=True):
        return Source(X=X, y=y, images=None, class_names=list("abc"), files=[])

    assert "toy" in available_datasets()
    ds = load_dataset("toy", split_seed=4)
    assert (len(ds.query), len(ds.val), len(ds.train), len(ds.database)) == (6, 3, 15, 81)
    check_partition(ds, 90)
    assert ds.class_names == ["a", "b", "c"] and ds.database.images is None
    np.testing.assert_array_equal(ds.query.X, X[ds.query.indices])
    with pytest.raises(RuntimeError, match="twice"):
        register_dataset(
            "toy",
            description="another",
            n_classes=3,
            n_items=90,
            item_shape=(4,),
            protocols=[Protocol("p", "")],
            locate=lambda data_dir=None: None,
        )(lambda **kwargs: None)


# ---------------------------------------------------------------- split mechanism


def test_allocate_is_proportional_and_respects_caps():
    sizes = np.array([50, 30, 15, 4, 1])
    for total in (1, 7, 33, 99, 100):
        alloc = allocate(total, sizes)
        assert alloc.sum() == total and (alloc <= sizes).all()
        assert np.all(np.abs(alloc - total * sizes / sizes.sum()) < 1)
    capped = allocate(20, sizes, caps=sizes - 1)
    assert capped.sum() == 20 and capped[-1] == 0 and (capped <= sizes - 1).all()
    with pytest.raises(HashlearnInputError, match="only 95"):
        allocate(96, sizes, caps=sizes - 1)


def test_draw_splits_reports_a_class_that_is_too_small():
    y = np.array([0] * 10 + [1] * 3)
    with pytest.raises(HashlearnInputError, match="class 1 has only 3 items.*query"):
        draw_splits(y, np.random.default_rng(0), query=np.array([2, 4]))


def test_labels_to_multihot():
    onehot = labels_to_multihot(np.array([2, 0, 1, 2]))
    np.testing.assert_array_equal(onehot.argmax(1), [2, 0, 1, 2])
    assert onehot.dtype == np.uint8 and onehot.sum() == 4
    assert labels_to_multihot(np.array([0, 1]), 5).shape == (2, 5)
    multi = np.array([[1, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(labels_to_multihot(multi, 3), multi)
    with pytest.raises(HashlearnInputError, match="out of range"):
        labels_to_multihot(np.array([0, 5]), 3)
    with pytest.raises(HashlearnInputError, match="0 and 1"):
        labels_to_multihot(np.array([[0, 2]]))


# ---------------------------------------------------------------- from_arrays


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    y = np.concatenate([np.full(60, 0), np.full(30, 1), np.full(9, 2), [3]])
    X = rng.normal(size=(100, 6)) + y[:, None]
    return X, y


def test_from_arrays_stratifies_and_keeps_rare_classes_in_database(blobs):
    X, y = blobs
    ds = from_arrays(X, y, query_size=0.2, val_size=10, train_size=0.5, split_seed=5)
    assert (len(ds.query), len(ds.val), len(ds.database), len(ds.train)) == (20, 10, 70, 35)
    check_partition(ds, 100)
    q = np.bincount(ds.query.y, minlength=4)
    assert np.all(np.abs(q[:3] - 20 * np.array([60, 30, 9]) / 100) < 1.5)
    assert q[3] == 0 and (ds.val.y != 3).all() and (ds.database.y == 3).sum() == 1
    assert ds.database.X.dtype == np.float32
    np.testing.assert_allclose(ds.query.X, X[ds.query.indices].astype(np.float32))
    again = from_arrays(X, y, query_size=0.2, val_size=10, train_size=0.5, split_seed=5)
    assert again.manifest == ds.manifest
    assert ds.protocol == "stratified" and "query = 20" in ds.manifest["protocol_description"]


def test_from_arrays_defaults_share_train_and_database(blobs):
    X, y = blobs
    ds = from_arrays(X, y)
    assert len(ds.query) == 10 and ds.train is ds.database and ds.val is None


def test_from_arrays_string_and_float_labels(blobs):
    X, _ = blobs
    names = np.array(["cat", "dog"] * 50)
    ds = from_arrays(X, names, query_size=10)
    assert ds.class_names == ["cat", "dog"] and ds.n_classes == 2
    np.testing.assert_array_equal(np.array(ds.class_names)[ds.query.y], names[ds.query.indices])
    assert from_arrays(X, np.arange(100) % 3 * 1.0).n_classes == 3
    with pytest.raises(HashlearnInputError, match="non-integer"):
        from_arrays(X, np.linspace(0, 1, 100))


def test_from_arrays_multilabel_is_random(blobs):
    X, _ = blobs
    Y = (np.random.default_rng(1).random((100, 5)) < 0.3).astype(int)
    ds = from_arrays(X, Y, query_size=15, val_size=5, train_size=20)
    assert ds.protocol == "random" and ds.is_multilabel and ds.database.y.dtype == np.uint8
    assert (len(ds.query), len(ds.val), len(ds.train), len(ds.database)) == (15, 5, 20, 80)
    check_partition(ds, 100)
    np.testing.assert_array_equal(ds.query.y, Y[ds.query.indices])
    assert ds.manifest["splits"]["query"]["per_class"] == ds.query.y.sum(0).tolist()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"y": np.zeros(99, int)}, "99 labels but X has 100 rows"),
        ({"y": None}, "required"),
        ({"X": np.full((100, 6), np.nan)}, "NaN or infinite"),
        ({"X": np.vstack([np.zeros((99, 6)), [[np.inf] * 6]])}, "NaN or infinite"),
        ({"X": np.full((100, 6), 1e300)}, "float32"),
        ({"X": np.zeros((0, 6)), "y": np.zeros(0, int)}, "at least 2"),
        ({"X": np.zeros(100)}, "2-D"),
        ({"query_size": 0}, "at least 1"),
        ({"query_size": 1.5}, "fraction"),
        ({"query_size": 60, "val_size": 40}, "no database"),
        ({"train_size": 500}, "more than the"),
        ({"y": np.array([[0, 2]] * 100)}, "multi-hot"),
        ({"images": np.zeros((3, 2, 2))}, "images has 3 rows"),
    ],
)
def test_from_arrays_rejects_bad_input(blobs, kwargs, message):
    X, y = blobs
    args = {"X": X, "y": y} | kwargs
    with pytest.raises(HashlearnInputError, match=message):
        from_arrays(args.pop("X"), args.pop("y"), **args)


# ---------------------------------------------------------------- files


def test_npz_npy_csv_roundtrip(blobs, tmp_path):
    X, y = blobs
    np.savez(tmp_path / "a.npz", X=X, y=y)
    np.savez(tmp_path / "b.npz", features=X, labels=y)
    np.save(tmp_path / "f.npy", X)
    np.save(tmp_path / "l.npy", y)
    np.savetxt(tmp_path / "l.txt", y, fmt="%d")
    np.savetxt(
        tmp_path / "t.csv",
        np.column_stack([X, y]),
        delimiter=",",
        header=",".join([f"f{i}" for i in range(6)] + ["label"]),
        comments="",
    )
    np.savetxt(tmp_path / "t.tsv", np.column_stack([X, y]), delimiter="\t")
    for features, labels in [
        ("a.npz", None),
        ("b.npz", None),
        ("f.npy", "l.npy"),
        ("f.npy", "l.txt"),
        ("t.csv", None),
        ("t.tsv", None),
    ]:
        Xr, yr = read_arrays(tmp_path / features, None if labels is None else tmp_path / labels)
        np.testing.assert_allclose(Xr, X)
        np.testing.assert_array_equal(yr, y)
    ds = load_dataset(str(tmp_path / "t.csv"), split_seed=2)
    assert ds.name == str(tmp_path / "t.csv") and len(ds.query) == 10
    redo = load_dataset(**ds.manifest["load_dataset"])  # the recorded recipe rebuilds it
    np.testing.assert_array_equal(redo.query.indices, ds.query.indices)
    rec = ds.manifest["sources"][0]
    assert rec["sha256"] == hashlib.sha256((tmp_path / "t.csv").read_bytes()).hexdigest()
    ds2 = load_files(tmp_path / "f.npy", tmp_path / "l.npy", query_size=5, split_seed=2)
    assert len(ds2.query) == 5 and len(ds2.manifest["sources"]) == 3


def test_csv_with_text_labels(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_text("w,h,kind\n1.0,2.0,cat\n1.5,2.5,dog\n0.5,1.0,cat\n3,4,dog\n")
    X, y = read_arrays(path)
    assert X.shape == (4, 2) and list(y) == ["cat", "dog", "cat", "dog"]
    ds = load_files(path, query_size=2)
    assert ds.class_names == ["cat", "dog"] and sorted(ds.query.y.tolist()) == [0, 1]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.npz", b"this is not a zip file", "not a valid .npz"),
        ("bad.npy", b"\x93NUMPY garbage", "not a valid .npy"),
        ("empty.csv", b"", "empty"),
        ("header_only.csv", b"a,b,label\n", "no data rows"),
        ("cells.csv", b"1,2,0\n3,x,1\n", r"row 2, column 2 is not a number \('x'\)"),
        ("ragged.csv", b"1,2,0\n3,1\n", "malformed"),
        ("one_column.csv", b"1\n2\n", "single column"),
        ("data.parquet", b"PAR1", "unsupported features file type '.parquet'"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(HashlearnFileError, match=message):
        read_arrays(path)


def test_file_errors_for_missing_keys_labels_and_pickles(tmp_path, blobs):
    X, y = blobs
    with pytest.raises(HashlearnFileError, match="not found"):
        load_dataset(str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "nokeys.npz", data=X)
    with pytest.raises(HashlearnFileError, match=r"found \['data'\]"):
        read_arrays(tmp_path / "nokeys.npz")
    np.save(tmp_path / "f.npy", X)
    with pytest.raises(HashlearnFileError, match="has no labels"):
        read_arrays(tmp_path / "f.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(HashlearnFileError, match="pickled"):
        read_arrays(tmp_path / "obj.npy", tmp_path / "f.npy")
    np.save(tmp_path / "short.npy", y[:50])
    with pytest.raises(HashlearnInputError, match="50 labels but X has 100"):
        load_files(tmp_path / "f.npy", tmp_path / "short.npy")
    np.savez(tmp_path / "g.npz", X=X, y=y)
    with pytest.raises(HashlearnInputError, match="protocol 'hashing' does not apply"):
        load_dataset(str(tmp_path / "g.npz"), protocol="hashing")


def test_from_splits_and_ready_made_npz(tmp_path):
    rng = np.random.default_rng(2)
    parts = {
        "train": (rng.normal(size=(30, 4)), np.array(["b", "c"] * 15)),
        "query": (rng.normal(size=(5, 4)), np.array(["a", "b", "c", "a", "b"])),
        "database": (rng.normal(size=(40, 4)), np.array(["a", "b", "c", "c"] * 10)),
    }
    np.savez(tmp_path / "ready.npz", **{f"{v}_{k}": p[i] for k, p in parts.items()
                                         for i, v in enumerate("Xy")})  # fmt: skip
    ds = load_dataset(str(tmp_path / "ready.npz"))
    assert ds.protocol == "predefined" and ds.val is None and ds.class_names == ["a", "b", "c"]
    assert ds.manifest["rng"] == "none (fixed split)"
    for key, (X, y) in parts.items():
        split = getattr(ds, key)
        np.testing.assert_allclose(split.X, X.astype(np.float32))
        np.testing.assert_array_equal(np.array(ds.class_names)[split.y], y)
    np.testing.assert_array_equal(ds.query.indices, np.arange(30, 35))
    no_train = from_splits(parts["query"], parts["database"])
    assert no_train.train is no_train.database
    with pytest.raises(HashlearnInputError, match="database X has 3 features but query X has 4"):
        from_splits(parts["query"], (np.zeros((4, 3)), np.zeros(4)))
    with pytest.raises(HashlearnInputError, match="database has 3 labels but 40 rows"):
        from_splits(parts["query"], (parts["database"][0], np.zeros(3)))
    np.savez(tmp_path / "half.npz", X_query=parts["query"][0], y_query=parts["query"][1])
    with pytest.raises(HashlearnFileError, match="no X_database"):
        load_files(tmp_path / "half.npz")


# ---------------------------------------------------------------- CLI


def test_cli_datasets_table_and_json(capsys, tmp_path):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "fashion-mnist" in out and "bundled with scikit-learn" in out
    assert main(["datasets", "--json", "--data-dir", str(tmp_path)]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert entries["digits"]["available"] and entries["digits"]["n_items"] == 1797
    fm = entries["fashion-mnist"]
    assert not fm["available"] and "apt-get install dataset-fashion-mnist" in fm["install_hint"]
    assert fm["protocols"]["hashing"]["sizes"] == {
        "train": 5000,
        "query": 1000,
        "database": 68000,
        "val": 1000,
    }
    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    assert "not available locally" in capsys.readouterr().out
