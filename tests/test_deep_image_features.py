"""Lazy images through torch DataLoader workers, and backbone features cached on disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hashlearn.data import ImageTransform, load_dataset
from hashlearn.deep.features import extract_split_features, with_backbone_features
from hashlearn.deep.image_data import ImageDataset, image_loader
from hashlearn.evaluation import evaluate_method
from test_data_images import write_list_dataset


class MeanColour(nn.Module):
    """A real (tiny) convolutional backbone: 1x1 conv then global average pooling."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 1)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.conv(x).mean(dim=(2, 3))


@pytest.fixture
def nus(tmp_path, monkeypatch):
    monkeypatch.delenv("HASHLEARN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_list_dataset(tmp_path / "nus-wide", 21, sizes=(8, 4, 12))
    return load_dataset("nus-wide", data_dir=tmp_path), tmp_path


def test_loader_decodes_lazy_files_in_worker_processes(nus):
    ds, _ = nus
    transform = ImageTransform(resize=16, crop=8, train=True)
    serial = image_loader(ds.database.images, ds.database.y, transform=transform, batch_size=5)
    workers = image_loader(
        ds.database.images, ds.database.y, transform=transform, batch_size=5, num_workers=1
    )
    a = [b for b in serial]
    b = [b for b in workers]
    assert a[0][0].shape == (5, 3, 8, 8) and a[0][1].shape == (5, 21)
    for (xa, ya, ia), (xb, yb, ib) in zip(a, b):  # same seeded crops in a worker process
        torch.testing.assert_close(xa, xb)
        torch.testing.assert_close(ya, yb)
        assert ia.tolist() == ib.tolist()
    items = ImageDataset(ds.database.images, transform=transform, seed=0)
    first = items[0][0]
    torch.testing.assert_close(items[0][0], first)  # same epoch, same crop

    def crop_at(epoch: int) -> torch.Tensor:
        items.set_epoch(epoch)
        return items[0][0]

    assert any(not torch.equal(first, crop_at(e)) for e in range(1, 6))  # new epoch, new crop
    with pytest.raises(Exception, match="3 labels for 12 images"):
        ImageDataset(ds.database.images, ds.database.y[:3])


def test_split_features_are_cached_by_backbone_weights_and_split(nus):
    ds, tmp = nus
    cache = tmp / "features"
    kwargs = dict(backbone_name="meancolour", cache_dir=cache, transform=ImageTransform(16, 8))
    net = MeanColour(seed=0)
    first = extract_split_features(net, ds, "query", **kwargs)
    assert first.shape == (4, 8) and net.calls == 1
    again = extract_split_features(net, ds, "query", **kwargs)
    np.testing.assert_array_equal(first, again)
    assert net.calls == 1  # read from the cache, the backbone did not run
    assert len(list(cache.glob("*.npz"))) == 1

    other_weights = MeanColour(seed=1)
    changed = extract_split_features(other_weights, ds, "query", **kwargs)
    assert other_weights.calls == 1 and not np.allclose(changed, first)
    extract_split_features(net, ds, "train", **kwargs)
    assert net.calls == 2 and len(list(cache.glob("*.npz"))) == 3

    # the same files loaded again map to the same cache entry
    reloaded = load_dataset("nus-wide", data_dir=tmp)
    np.testing.assert_array_equal(extract_split_features(net, reloaded, "query", **kwargs), first)
    assert net.calls == 2


def test_backbone_features_make_a_lazy_image_set_usable_by_shallow_methods(nus):
    ds, tmp = nus
    net = MeanColour(seed=0)
    with_backbone_features(
        ds, net, backbone_name="meancolour", cache_dir=tmp / "f", transform=ImageTransform(16, 8)
    )
    assert ds.database.X.shape == (12, 8) and ds.manifest["features"]["backbone"] == "meancolour"
    record = evaluate_method("lsh", ds, 4, topk=ds.resolve_topk())
    assert 0.0 <= record["map"] <= 1.0 and record["bits"] == 4
