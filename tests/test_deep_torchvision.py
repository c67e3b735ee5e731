"""torchvision's AlexNet / VGG16 / ResNet-50 backbones: shapes, fine-tuning gradients, resume,
and their weights (torchvision's weights API through torch's cache, a local file, random)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
models = pytest.importorskip("torchvision.models")

from hashlearn._io import HashlearnFileError  # noqa: E402
from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.deep import TrainConfig, Trainer, build_backbone, load_run  # noqa: E402
from hashlearn.deep.model import build_network  # noqa: E402

WIDTH = {"alexnet": 4096, "vgg16": 4096, "resnet50": 2048}


@pytest.mark.parametrize(
    "name", ["alexnet", pytest.param("vgg16", marks=pytest.mark.slow), "resnet50"]
)
def test_backbone_shape_and_gradients_reach_the_backbone(name):
    torch.manual_seed(0)
    spec = {"backbone": name, "n_bits": 12, "activation": "tanh", "hidden": 0,
            "frozen": False, "in_channels": 3, "weights": "none"}  # fmt: skip
    net = build_network(spec).train()
    x = torch.rand(2, 3, 64, 64)  # used at its own size (no resize inside the backbone)
    assert net.features(x).shape == (2, WIDTH[name])
    z = net(x)
    assert z.shape == (2, 12)
    z.pow(2).sum().backward()
    first = next(p for p in net.backbone.body.parameters())
    assert first.grad is not None and float(first.grad.abs().sum()) > 0
    frozen = build_network({**spec, "frozen": True})
    frozen(x).pow(2).sum().backward()
    assert all(p.grad is None for p in frozen.backbone.parameters())
    assert frozen.head[0].weight.grad is not None


def test_too_small_images_name_the_transform():
    net = build_backbone("alexnet", weights="none").eval()
    with pytest.raises(HashlearnInputError, match="at least 63x63.*transform"):
        net(torch.zeros(1, 3, 32, 32))


class _Interrupted(Trainer):
    def _checkpoint(self, state, weights=None):
        super()._checkpoint(state, weights)
        if state["epoch"] == 1 and state["status"] == "running":
            raise KeyboardInterrupt


@pytest.mark.slow
def test_fine_tuned_resnet50_resumes_to_identical_weights(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(16) % 2
    cfg = TrainConfig(loss="dpsh", quantization="none", n_bits=8, backbone="resnet50",
                      weights="none", epochs=2, batch_size=8, lr=1e-3, patience=0, seed=1,
                      device="cpu", val_fraction=0.25)  # fmt: skip
    straight = Trainer(cfg, tmp_path / "a", progress=False).fit(images, labels, n_classes=2)
    with pytest.raises(KeyboardInterrupt):
        _Interrupted(cfg, tmp_path / "b", progress=False).fit(images, labels, n_classes=2)
    resumed = Trainer(cfg, tmp_path / "b", resume=True, progress=False).fit(
        images, labels, n_classes=2
    )
    a, b = straight.network.state_dict(), resumed.network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The fine-tuned backbone is stored in the run and reloads without any ImageNet file.
    codes = load_run(tmp_path / "a").encode(images)
    assert np.array_equal(codes, straight.encode(images))


def test_weights_from_torch_cache_a_file_or_random(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(HashlearnFileError, match="not in torch's cache.*downloads are off"):
        build_backbone("resnet50", download=False)
    with pytest.raises(HashlearnFileError, match="not in torch's cache"):
        build_backbone("resnet50", weights="IMAGENET1K_V2", download=False)
    # A file in torch's cache under torchvision's name is read without any download.
    torch.manual_seed(5)
    reference = models.resnet50(weights=None)
    url = models.ResNet50_Weights.DEFAULT.url
    cached = tmp_path / "torch" / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cached)
    net = build_backbone("resnet50", download=False)
    assert net.reloadable
    conv = reference.conv1.weight
    assert torch.equal(net.body.conv1.weight, conv)
    # A local file, as before; a missing one names the choices.
    local = tmp_path / "mine.pth"
    torch.save(reference.state_dict(), local)
    assert torch.equal(build_backbone("resnet50", weights=local).body.conv1.weight, conv)
    with pytest.raises(HashlearnFileError, match="does not exist.*IMAGENET1K_V1"):
        build_backbone("resnet50", weights=tmp_path / "nope.pth")
    # Random weights are not reloadable: a frozen random backbone is stored in its run.
    random_net = build_backbone("resnet50", weights="none")
    assert not random_net.reloadable


def test_cli_no_download_is_respected(tmp_path, monkeypatch, capsys):
    from hashlearn.cli.main import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code = main(["train", "--dataset", "digits", "--backbone", "alexnet", "--no-download",
                 "--epochs", "1", "--output", str(tmp_path / "run"), "--quiet"])  # fmt: skip
    assert code != 0
    err = capsys.readouterr().err
    assert "not in torch's cache" in err and "download" in err
    assert not (tmp_path / "run" / "checkpoints").exists()
