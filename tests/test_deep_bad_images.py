"""Bad image input: files that do not decode, decompression bombs, unusual pixel modes, list
entries leaving the data folder or looping, a dying loader worker — a one-line error naming
the file (and list line), never a hang, and a run that resumes once the file is fixed."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from hashlearn._io import HashlearnFileError  # noqa: E402
from hashlearn.data import ImageFiles, load_dataset  # noqa: E402
from hashlearn.data.image_folder import load_image_list  # noqa: E402
from hashlearn.data.images import decode_image  # noqa: E402
from hashlearn.deep import TrainConfig, Trainer, train_on_dataset  # noqa: E402


def _folder(root, n=6, size=36):
    rng = np.random.default_rng(0)
    for label in range(2):
        (root / f"c{label}").mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"c{label}" / f"{i}.png")
    return root


def _config(**kwargs):
    base = dict(loss="dpsh", quantization="none", n_bits=8, backbone="cnn", cnn_width=4,
                cnn_features=8, epochs=1, batch_size=4, patience=0, transform="h2q",
                device="cpu", seed=0)  # fmt: skip
    base.update(kwargs)
    return TrainConfig(**base)


def test_pixel_modes_become_8_bit_rgb(tmp_path):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((4, 5), 100, np.uint8)).save(gray)
    rgba = tmp_path / "rgba.png"
    alpha = np.zeros((4, 5, 4), np.uint8)
    alpha[..., 0], alpha[..., 3] = 200, 255
    alpha[0, 0, 3] = 0  # one transparent pixel: black
    Image.fromarray(alpha, "RGBA").save(rgba)
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (5, 4), (0, 255, 255, 0)).save(cmyk)  # red
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 5), 32768, np.uint16)).save(deep)  # 16-bit, half range
    assert Image.open(deep).mode.startswith("I")
    for path in (gray, rgba, cmyk, deep):
        arr = decode_image(path)
        assert arr.shape == (4, 5, 3) and arr.dtype == np.uint8
    assert (decode_image(gray) == 100).all()
    assert decode_image(rgba)[1, 1].tolist() == [200, 0, 0]
    assert decode_image(rgba)[0, 0].tolist() == [0, 0, 0]
    red = decode_image(cmyk).astype(int)
    assert red[..., 0].min() > 200 and red[..., 1:].max() < 60
    assert abs(int(decode_image(deep)[0, 0, 0]) - 128) <= 1  # scaled, not clipped to 255


def test_undecodable_files_and_bombs_name_the_file(tmp_path, monkeypatch):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    truncated = tmp_path / "cut.jpg"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    for path in (text, truncated):
        with pytest.raises(HashlearnFileError, match=f"cannot decode image file {path}"):
            decode_image(path)
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1,600 pixels: a bomb here
    with pytest.raises(HashlearnFileError, match=f"{big} is too large to decode safely"):
        decode_image(big)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_damaged_training_image_stops_the_run_which_resumes_after_the_fix(tmp_path, workers):
    photos = _folder(tmp_path / "photos")
    ds = load_dataset("image-folder", data_dir=photos, split_seed=0)
    run = tmp_path / "run"
    train_on_dataset(_config(num_workers=workers), ds, run, progress=False)
    victim = ds.train.images.path(0)
    good = open(victim, "rb").read()
    open(victim, "wb").write(b"this is not a png")
    with pytest.raises(HashlearnFileError) as err:
        train_on_dataset(_config(epochs=2, num_workers=workers), ds, run, resume=True,
                         progress=False)  # fmt: skip
    message = str(err.value)
    assert f"cannot decode image file {victim}" in message and "\n" not in message
    assert json.loads((run / "checkpoints/latest.json").read_text())["epoch"] == 1
    open(victim, "wb").write(good)
    train_on_dataset(_config(epochs=2, num_workers=workers), ds, run, resume=True, progress=False)
    assert json.loads((run / "result.json").read_text())["epoch"] == 2


def test_list_entries_leaving_the_folder_or_looping_name_the_line(tmp_path):
    photos = _folder(tmp_path / "data")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "notes.txt").write_text("secret")
    lines = [f"c{i % 2}/{i // 2}.png {i % 2}" for i in range(8)]
    listing = photos / "images.txt"
    listing.write_text("\n".join([*lines, "../private/notes.txt 1"]) + "\n")
    with pytest.raises(HashlearnFileError, match=r"line 9: image '../private/notes.txt' leaves"):
        load_image_list(listing)
    os.symlink(photos / "loop.png", photos / "loop.png")
    listing.write_text("\n".join([*lines, "loop.png 1"]) + "\n")
    with pytest.raises(HashlearnFileError, match=r"line 9: image 'loop.png'"):
        load_image_list(listing)


def test_a_listed_image_that_does_not_decode_names_its_list_line(tmp_path):
    photos = _folder(tmp_path / "data")
    listing = photos / "images.txt"
    listing.write_text("\n".join(f"c{i % 2}/{i // 2}.png {i % 2}" for i in range(10)) + "\n")
    (photos / "c1" / "2.png").write_bytes(b"truncated")  # line 6
    ds = load_image_list(listing)
    with pytest.raises(HashlearnFileError, match=r"cannot decode.*listed in .*images.txt, line 6"):
        for split in (ds.train, ds.query, ds.database):
            for i in range(len(split.images)):
                split.images[i]


class _DyingFiles(ImageFiles):
    """Image files whose loader worker is killed (as the kernel's OOM killer would)."""

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            if torch.utils.data.get_worker_info() is not None:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(index)

    def subset(self, indices):
        return _DyingFiles(self.paths[indices])  # (no origins: not listed in a file)


def test_a_dead_worker_is_a_clear_error_not_a_hang(tmp_path):
    photos = _folder(tmp_path / "photos")
    ds = load_dataset("image-folder", data_dir=photos, split_seed=0)
    files = _DyingFiles(ds.train.images.paths)
    with pytest.raises(HashlearnFileError, match="image loading worker stopped.*resume=True"):
        Trainer(_config(num_workers=2), tmp_path / "run", progress=False).fit(
            files, ds.train.y, n_classes=2
        )
