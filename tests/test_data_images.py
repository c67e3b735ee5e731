"""List-format image sets (nus-wide, coco, imagenet100), image folders/lists, lazy images,
transforms, the torch image Dataset and cached backbone features — on tiny PNGs written here."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.cli.main import main
from hashlearn.data import ImageFiles, ImageTransform, load_dataset, load_image_folder

N_CLASSES = {"nus-wide": 21, "coco": 80, "imagenet100": 100}


def write_png(path, seed: int, size=(12, 9)) -> np.ndarray:
    """A random RGB PNG (lossless, so the decoded pixels are known); returns its pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def write_list_dataset(folder, n_classes: int, sizes=(6, 3, 9)) -> dict:
    """train/test/database lists over PNGs in folder/images; multi-hot labels, seeded."""
    rng = np.random.default_rng(1)
    pixels, labels, counter = {}, {}, 0
    for split, n in zip(("train", "test", "database"), sizes):
        lines = []
        for _ in range(n):
            name = f"images/{counter:03d}.png"
            pixels[name] = write_png(folder / name, counter)
            vec = (rng.random(n_classes) < 0.2).astype(int)
            vec[counter % n_classes] = 1
            labels[name] = vec
            lines.append(name + " " + " ".join(map(str, vec)))
            counter += 1
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return {"pixels": pixels, "labels": labels}


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("HASHLEARN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("name", sorted(N_CLASSES))
def test_list_datasets_read_the_three_files_lazily(name, isolated):
    truth = write_list_dataset(isolated / name, N_CLASSES[name])
    ds = load_dataset(name, data_dir=isolated)
    assert (len(ds.train), len(ds.query), len(ds.database)) == (6, 3, 9)
    assert ds.val is None and ds.protocol == "lists"
    assert ds.query.y.shape == (3, N_CLASSES[name]) and ds.query.y.dtype == np.uint8
    assert isinstance(ds.database.images, ImageFiles) and len(ds.database.images) == 9
    first_db = "images/009.png"  # train (6) and test (3) lines come first
    np.testing.assert_array_equal(ds.database.images[0], truth["pixels"][first_db])
    np.testing.assert_array_equal(ds.database.y[0], truth["labels"][first_db])
    expected = {"nus-wide": 5000, "coco": 5000, "imagenet100": 1000}[name]
    assert ds.manifest["protocol_parameters"]["map_topk"] == expected
    assert [r["lines"] for r in ds.manifest["sources"]] == [6, 3, 9]
    # data_dir may be the dataset folder itself
    same = load_dataset(name, data_dir=isolated / name)
    assert same.split_fingerprint("query") == ds.split_fingerprint("query")
    with pytest.raises(HashlearnInputError, match="no feature vectors.*extract_split_features"):
        _ = ds.train.X
    assert "on demand" in repr(ds)


def test_ragged_label_vectors_name_the_file_and_line(isolated):
    write_list_dataset(isolated / "nus-wide", 21)
    path = isolated / "nus-wide" / "database.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4] + " 0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(HashlearnFileError, match=r"database.txt, line 5: 22 label values"):
        load_dataset("nus-wide", data_dir=isolated)


def test_user_list_with_ragged_vectors_names_the_first_line(isolated):
    for i in range(3):
        write_png(isolated / f"{i}.png", i)
    (isolated / "mine.txt").write_text("0.png 0 1 1\n1.png 1 0 0\n\n2.png 1 0\n")
    with pytest.raises(HashlearnFileError, match=r"mine.txt, line 4: 2 label values, but line 1"):
        load_dataset(isolated / "mine.txt")


def test_missing_image_names_the_line_and_path(isolated):
    write_list_dataset(isolated / "coco", 80)
    (isolated / "coco" / "images" / "004.png").unlink()
    with pytest.raises(HashlearnFileError) as err:
        load_dataset("coco", data_dir=isolated)
    text = str(err.value)
    assert "train.txt, line 5" in text and "004.png does not exist" in text


def test_non_binary_labels_and_missing_lists_are_reported(isolated):
    write_list_dataset(isolated / "imagenet100", 100)
    path = isolated / "imagenet100" / "test.txt"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].rsplit(" ", 1)[0] + " 2"
    path.write_text("\n".join(lines))
    with pytest.raises(HashlearnFileError, match="test.txt, line 2: label value '2'"):
        load_dataset("imagenet100", data_dir=isolated)
    with pytest.raises(HashlearnFileError, match="Looked in: .*nothing"):
        load_dataset("nus-wide", data_dir=isolated / "nothing")


def test_unknown_dataset_and_protocol_names_list_the_choices(isolated):
    with pytest.raises(HashlearnInputError, match="cifar10.*coco.*imagenet100.*nus-wide"):
        load_dataset("cifar-100")
    write_list_dataset(isolated / "nus-wide", 21)
    with pytest.raises(HashlearnInputError, match="choose one of: lists"):
        load_dataset("nus-wide", protocol="h2q", data_dir=isolated)


def make_folder(root, per_class=(5, 4, 6)):
    for c, n in enumerate(per_class):
        for i in range(n):
            write_png(root / f"class_{c}" / "sub" / f"{i}.png", 100 * c + i)
    (root / "class_1" / "notes.txt").write_text("not an image")


def test_image_folder_by_name_or_path_is_split_stratified_and_seeded(isolated):
    make_folder(isolated / "photos")
    by_name = load_dataset("image-folder", split_seed=2, data_dir=isolated / "photos")
    by_path = load_dataset(isolated / "photos", split_seed=2)
    assert by_name.class_names == ["class_0", "class_1", "class_2"]
    assert len(by_name.database) + len(by_name.query) == 15
    assert len(by_name.query) == 2  # ceil(10 % of 15), one item per class kept back
    np.testing.assert_array_equal(by_name.query.indices, by_path.query.indices)
    img = by_name.query.images[0]
    assert img.dtype == np.uint8 and img.shape == (9, 12, 3)
    custom = load_image_folder(isolated / "photos", query_size=3, val_size=3, split_seed=0)
    assert (len(custom.query), len(custom.val)) == (3, 3)
    with pytest.raises(HashlearnInputError, match="image-folder needs data_dir"):
        load_dataset("image-folder")


def test_image_list_with_class_words_or_vectors(isolated):
    for i in range(6):
        write_png(isolated / "imgs" / f"{i}.png", i)
    words = "\n".join(f"imgs/{i}.png {'cat' if i % 2 else 'dog'}" for i in range(6))
    (isolated / "words.txt").write_text(words)
    ds = load_dataset(str(isolated / "words.txt"))
    assert ds.class_names == ["cat", "dog"] and ds.database.y.ndim == 1
    vectors = "\n".join(f"{isolated}/imgs/{i}.png {i % 2} 1 0" for i in range(6))
    (isolated / "images.txt").write_text(vectors)  # absolute paths, the folder's default name
    multi = load_dataset("image-list", data_dir=isolated)
    assert multi.database.y.shape[1] == 3 and multi.database.y.dtype == np.uint8
    rows = np.concatenate([multi.query.y, multi.database.y])
    assert sorted(map(tuple, rows.tolist())) == sorted([(i % 2, 1, 0) for i in range(6)])


def test_image_files_index_subset_and_load(isolated):
    paths = [str(isolated / f"{i}.png") for i in range(4)]
    truth = [write_png(isolated / f"{i}.png", i) for i in range(4)]
    files = ImageFiles(paths)
    sub = files[np.array([3, 1])]
    assert isinstance(sub, ImageFiles) and len(sub) == 2
    np.testing.assert_array_equal(sub[0], truth[3])
    np.testing.assert_array_equal(files.load([0, 2]), np.stack([truth[0], truth[2]]))
    with pytest.raises(HashlearnInputError, match="not converted to an array"):
        np.asarray(files)
    (isolated / "bad.png").write_bytes(b"not a png")
    with pytest.raises(HashlearnFileError, match="cannot decode image file .*bad.png"):
        ImageFiles([str(isolated / "bad.png")])[0]


def test_transform_resizes_crops_and_normalises_like_deephash():
    image = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    out = ImageTransform()(image)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    plain = ImageTransform(mean=None, std=None)(image)
    assert 0.0 <= plain.min() and plain.max() <= 1.0
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(out, (plain - mean[:, None, None]) / std[:, None, None], atol=1e-5)
    # no resize and an image already at the crop size: only scaling and normalisation
    small = image[:224, :224]
    expected = (small.transpose(2, 0, 1) / 255.0 - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_allclose(ImageTransform(resize=None)(small), expected, atol=1e-5)
    # torchvision's Resize(256) rule: shorter side 256, longer side truncated (400*256/300)
    resized = ImageTransform(crop=None, mean=None, std=None)(image)
    assert resized.shape == (3, 256, 341)
    train = ImageTransform(train=True)
    a = train(image, np.random.default_rng(5))
    b = train(image, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, train(image, np.random.default_rng(s))) for s in range(6, 10))
    with pytest.raises(HashlearnInputError, match="cannot crop 224x224 from a 9x12"):
        ImageTransform(resize=None)(image[:9, :12])


def test_datasets_cli_shows_where_it_looked_and_the_cutoffs(isolated, capsys):
    write_list_dataset(isolated / "coco", 80)
    assert main(["datasets", "--data-dir", str(isolated)]) == 0
    out = capsys.readouterr().out
    assert str(isolated / "coco") in out
    assert f"looked in: {isolated / 'cifar-10-batches-bin'}" in out
    assert "mAP@5000" in out and "mAP@1000" in out
