"""timm and open_clip image towers as backbones, by name, offline (random weights)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hashlearn._io import HashlearnFileError  # noqa: E402
from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.deep import TrainConfig, Trainer, build_backbone, load_run  # noqa: E402


@pytest.mark.slow
def test_timm_tower_fine_tunes_and_reloads_offline(tmp_path):
    pytest.importorskip("timm")
    net = build_backbone("timm:vit_tiny_patch16_224", weights="none").eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 224, 224)).shape == (2, net.out_features) == (2, 192)
    assert torch.allclose(net.mean.flatten(), torch.tensor([0.5, 0.5, 0.5]))  # its own stats
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 224, 224, 3), dtype=np.uint8)
    cfg = TrainConfig(loss="dpsh", quantization="none", n_bits=8, epochs=1, batch_size=4,
                      backbone="timm:vit_tiny_patch16_224", weights="none", patience=0,
                      device="cpu", val_fraction=0.2)  # fmt: skip
    hasher = Trainer(cfg, tmp_path / "run", progress=False).fit(images, np.arange(10) % 2)
    codes = load_run(tmp_path / "run").encode(images[:3])
    assert np.array_equal(codes, hasher.encode(images[:3]))


def test_open_clip_tower_by_name_offline():
    pytest.importorskip("open_clip")
    net = build_backbone("open_clip:ViT-B-32", weights="none").eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 224, 224)).shape == (1, 512)
    assert not net.reloadable


def test_tower_errors_are_clear(tmp_path, monkeypatch):
    pytest.importorskip("timm")
    pytest.importorskip("open_clip")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(HashlearnInputError, match="timm has no model"):
        build_backbone("timm:no_such_net", weights="none")
    with pytest.raises(HashlearnInputError, match="open_clip has no model"):
        build_backbone("open_clip:No-Such", weights="none")
    with pytest.raises(HashlearnFileError, match="downloads are off"):
        build_backbone("timm:vit_tiny_patch16_224", download=False)  # nothing cached
    with pytest.raises(HashlearnFileError, match="does not exist"):
        build_backbone("timm:vit_tiny_patch16_224", weights=tmp_path / "missing.pth")
