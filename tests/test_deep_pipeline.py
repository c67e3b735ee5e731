"""One data pipeline: fine-tuning on lazy image files and arrays, workers, seeded resume,
named transforms, mixed precision, fast encoding, and where a run's data came from."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from sklearn.datasets import load_digits  # noqa: E402

from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.cli.main import main  # noqa: E402
from hashlearn.data import ImageFiles, load_dataset  # noqa: E402
from hashlearn.deep import TrainConfig, Trainer, load_run  # noqa: E402
from hashlearn.deep.pipeline import EpochBatchSampler, image_transforms  # noqa: E402
from hashlearn.deep.train_dataset import train_on_dataset  # noqa: E402
from hashlearn.evaluation import evaluate_run  # noqa: E402


def _write_photos(root, per_class=8, size=40):
    digits = load_digits()
    for label in range(3):
        (root / f"class{label}").mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == label][:per_class]):
            pixels = (image * 255 / 16).astype(np.uint8)
            img = Image.fromarray(pixels).resize((size, size + 4 * (i % 3)), Image.BILINEAR)
            img.convert("RGB").save(root / f"class{label}" / f"{i}.png")
    return root


@pytest.fixture
def photos(tmp_path, monkeypatch):
    """3 classes x 8 digit images of varying sizes, RGB PNGs, one folder per class."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return _write_photos(tmp_path / "photos")


def _config(**kwargs):
    base = dict(loss="dpsh", quantization="hswd", n_bits=16, backbone="cnn", cnn_width=4,
                cnn_features=16, epochs=3, batch_size=8, lr=3e-3, patience=0, seed=3,
                transform="deephash", device="cpu")  # fmt: skip
    base.update(kwargs)
    return TrainConfig(**base)


class _Interrupted(Trainer):
    """Stops (as Ctrl-C would) right after the checkpoint of epoch 1."""

    def _checkpoint(self, state, weights=None):
        super()._checkpoint(state, weights)
        if state["epoch"] == 1 and state["status"] == "running":
            raise KeyboardInterrupt


class _Recorded(Trainer):
    """Keeps the network's weights as they were before the first step."""

    def _start(self):
        self.initial = {k: v.clone() for k, v in self.network.state_dict().items()}
        return super()._start()


def _fit(trainer, ds):
    return trainer.fit(ds.train.images, ds.train.y, n_classes=ds.n_classes)


def _weights(hasher):
    return {k: v.clone() for k, v in hasher.network.state_dict().items()}


def test_backbone_fine_tunes_on_lazy_files_and_resume_is_bit_identical(photos, tmp_path):
    ds = load_dataset("image-folder", data_dir=photos, split_seed=0)
    assert isinstance(ds.train.images, ImageFiles)
    trainer = _Recorded(_config(), tmp_path / "a", progress=False)
    straight = _fit(trainer, ds)
    # The same run on 2 decoding workers, interrupted after epoch 1 and resumed.
    with pytest.raises(KeyboardInterrupt):
        _fit(_Interrupted(_config(num_workers=2), tmp_path / "b", progress=False), ds)
    resumed = _fit(Trainer(_config(num_workers=2), tmp_path / "b", resume=True, progress=False), ds)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The backbone was fine-tuned (not frozen): every one of its weights moved.
    moved = [not torch.equal(trainer.initial[k], a[k]) for k in a if k.endswith("weight")]
    assert all(moved) and len(moved) > 4
    # The recorded transform prepares lazy files and the same images as arrays alike.
    spec = json.loads((tmp_path / "a/config.json").read_text())["input"]
    assert spec["transform_name"] == "deephash" and spec["train_transform"]["train"]
    loaded = load_run(tmp_path / "a")
    query = ds.query.images
    arrays = [np.asarray(query[i]) for i in range(len(query))]
    codes = loaded.encode(query)
    assert np.array_equal(codes, np.concatenate([loaded.encode(a[None]) for a in arrays]))


def test_sampler_order_depends_on_seed_and_epoch_only():
    from hashlearn.deep.distributed import Context

    s = EpochBatchSampler(20, 4, seed=1, ctx=Context())
    s.set_epoch(2)
    first = list(s)
    s.set_epoch(3)
    other = list(s)
    s.set_epoch(2)
    assert list(s) == first != other
    assert len(first) == 5 and sorted(sum(first, [])) == list(range(20))
    two = [EpochBatchSampler(20, 4, seed=1, ctx=Context(r, 2)) for r in range(2)]
    for t in two:
        t.set_epoch(2)
    shards = [sum(list(t), []) for t in two]
    assert not set(shards[0]) & set(shards[1]) and len(shards[0]) == 8


def test_named_transforms_are_the_authors():
    h2q_train, h2q_eval = image_transforms("h2q")
    dh_train, dh_eval = image_transforms("deephash")
    assert image_transforms("none") == (None, None)
    assert h2q_train.describe() == h2q_eval.describe() == dh_eval.describe()
    assert (h2q_eval.resize, h2q_eval.crop, h2q_eval.train) == (256, 224, False)
    assert (dh_train.resize, dh_train.crop, dh_train.train) == (256, 224, True)
    image = np.random.default_rng(0).integers(0, 256, (300, 260, 3), dtype=np.uint8)
    crops = {dh_train(image, np.random.default_rng(s)).tobytes() for s in range(6)}
    assert len(crops) > 1  # random crop / flip
    centre = h2q_train(image, np.random.default_rng(0))
    assert centre.shape == (3, 224, 224)
    assert np.array_equal(centre, h2q_train(image, np.random.default_rng(1)))


def test_arrays_keep_their_size_unless_the_transform_asks(digits, tmp_path):
    cfg = _config(transform="auto", epochs=1, batch_size=64)
    hasher = Trainer(cfg, tmp_path / "small", progress=False).fit(
        digits.train.images, digits.train.y, n_classes=10
    )
    spec = hasher.config["input"]
    assert "transform" not in spec and spec["image_shape"] == [8, 8]
    sizes = []
    hook = hasher.network.backbone.register_forward_hook(
        lambda m, args, out: sizes.append(tuple(args[0].shape[-2:]))
    )
    hasher.encode(digits.query.images[:3])
    assert sizes == [(8, 8)]
    sizes.clear()
    rgb = np.repeat(digits.train.images[:40, :, :, None], 3, axis=3)
    rgb = np.kron(rgb, np.ones((1, 4, 4, 1), dtype=np.uint8))  # 32 x 32 RGB
    big = Trainer(_config(transform="h2q", epochs=1), tmp_path / "big", progress=False).fit(
        rgb, digits.train.y[:40], n_classes=10
    )
    hook.remove()
    big.network.backbone.register_forward_hook(
        lambda m, args, out: sizes.append(tuple(args[0].shape[-2:]))
    )
    big.encode(rgb[:2])
    assert sizes == [(224, 224)]


def test_bf16_autocast_trains_on_cpu_and_differs_from_fp32(digits):
    def fit(precision):
        cfg = _config(transform="auto", epochs=2, batch_size=64, precision=precision)
        return Trainer(cfg, None, progress=False).fit(
            digits.train.images, digits.train.y, n_classes=10
        )

    fp32, bf16 = fit("fp32"), fit("bf16")
    w32, w16 = _weights(fp32), _weights(bf16)
    assert all(torch.isfinite(v).all() for v in w16.values() if v.is_floating_point())
    conv = "backbone.features.0.weight"
    assert not torch.equal(w32[conv], w16[conv])
    assert float((w32[conv] - w16[conv]).abs().max()) < 0.05  # the same training, rounded
    assert fp32.encode(digits.query.images).shape == bf16.encode(digits.query.images).shape
    with pytest.raises(HashlearnInputError, match="precision"):
        TrainConfig(precision="int8").validate()


def test_encoding_runs_large_batches_under_inference_mode(digits):
    cfg = _config(transform="auto", epochs=1, batch_size=64)
    hasher = Trainer(cfg, None, progress=False).fit(
        digits.train.images, digits.train.y, n_classes=10
    )
    calls = []
    hasher.network.register_forward_hook(
        lambda m, args, out: calls.append((len(args[0]), torch.is_inference_mode_enabled()))
    )
    images = digits.database.images  # 1,597 images
    codes = hasher.encode(images)
    assert [n for n, _ in calls] == [1024, len(images) - 1024]
    assert all(inference for _, inference in calls)
    assert np.array_equal(codes, hasher.encode(images, batch_size=100))  # batch-independent


def test_run_records_its_data_folder_so_the_printed_hint_works(photos, tmp_path, capsys):
    run = tmp_path / "runs" / "photos"
    args = ["train", "--dataset", "image-folder", "--data-dir", str(photos), "--backbone",
            "cnn", "--transform", "h2q", "--bits", "8", "--epochs", "1", "--batch-size", "8",
            "--device", "cpu", "--output", str(run), "--quiet"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["data_dir"] == str(photos.resolve())
    assert main(["evaluate", "--model", str(run), "--quiet"]) == 0  # no --data-dir needed
    out = capsys.readouterr().out
    assert "photos" in out
    assert 0.0 <= evaluate_run(run, device="cpu")["map"] <= 1.0


def test_list_format_reader_fine_tunes_multilabel_lazy_images(tmp_path, monkeypatch):
    from test_data_images import write_list_dataset

    monkeypatch.delenv("HASHLEARN_DATA", raising=False)
    write_list_dataset(tmp_path / "nus-wide", 21, sizes=(8, 4, 12))
    ds = load_dataset("nus-wide", data_dir=tmp_path)
    assert isinstance(ds.train.images, ImageFiles) and ds.train.y.ndim == 2
    run = tmp_path / "run"
    hasher = train_on_dataset(_config(epochs=1, batch_size=4, transform="h2q"), ds, run,
                              progress=False, data_dir=tmp_path)  # fmt: skip
    assert not hasher.config["network"]["frozen"]
    assert hasher.encode(ds.query.images).shape == (len(ds.query), 2)
    assert 0.0 <= evaluate_run(run, device="cpu")["map"] <= 1.0  # data_dir from config.json


def test_fp16_with_gradient_scaler_resumes_bit_identical(digits, tmp_path):
    cfg = _config(transform="auto", epochs=2, batch_size=64, precision="fp16")
    fit = lambda t: t.fit(digits.train.images, digits.train.y, n_classes=10)  # noqa: E731
    straight = fit(Trainer(cfg, tmp_path / "a", progress=False))
    with pytest.raises(KeyboardInterrupt):
        fit(_Interrupted(cfg, tmp_path / "b", progress=False))
    state = json.loads(next((tmp_path / "b/checkpoints").glob("epoch-*/state.json")).read_text())
    assert state["state"]["grad_scaler"]["scale"] > 0  # the scaler's state is checkpointed
    resumed = fit(Trainer(cfg, tmp_path / "b", resume=True, progress=False))
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_image_batches_are_channels_last_with_the_same_values():
    """Colour batches reach the network channels-last (oneDNN's fast layout on the CPU), with
    exactly the values of the plain transposed copy; grayscale and feature rows unchanged."""
    from hashlearn.deep.features import images_to_tensor
    from hashlearn.deep.pipeline import as_channels_last

    rgb = np.random.default_rng(0).integers(0, 256, (5, 9, 7, 3), dtype=np.uint8)
    x = images_to_tensor(rgb, mean=0.5, std=0.25)
    assert x.shape == (5, 3, 9, 7)
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    expected = (torch.from_numpy(rgb.transpose(0, 3, 1, 2).copy()).float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(x, expected, rtol=0, atol=0)
    gray = images_to_tensor(rgb[..., 0])
    assert gray.shape == (5, 1, 9, 7)
    torch.testing.assert_close(gray, torch.from_numpy(rgb[..., 0]).float()[:, None] / 255)
    rows = torch.ones(4, 6)
    assert as_channels_last(rows) is rows


def test_deterministic_block_skips_the_nan_fill_and_restores_the_settings():
    from hashlearn.deep.objective import deterministic

    before = (torch.are_deterministic_algorithms_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)  # fmt: skip
    with deterministic("cpu"):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.utils.deterministic.fill_uninitialized_memory is False
    assert (torch.are_deterministic_algorithms_enabled(),
            torch.utils.deterministic.fill_uninitialized_memory) == before  # fmt: skip


def test_inference_batches_follow_the_pixel_budget_not_the_training_batch():
    """Forward-only batches: 32 images of 224 px on the CPU (larger batches ran slower per
    image there), 8x on CUDA, more for small images up to 1024; feature rows 1024."""
    from hashlearn.data.images import ImageTransform
    from hashlearn.deep.pipeline import inference_batch_size

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    tf = ImageTransform(256, 224)
    assert inference_batch_size(None, cpu, transform=tf) == 32
    assert inference_batch_size(None, cuda, transform=tf) == 256
    assert inference_batch_size(np.zeros((5, 112, 112, 3), np.uint8), cpu) == 128
    assert inference_batch_size(np.zeros((5, 28, 28), np.uint8), cpu) == 1024
    assert inference_batch_size(np.zeros((5, 1280), np.float32), cpu, kind="features") == 1024
    assert inference_batch_size(np.zeros((2, 4000, 4000, 3), np.uint8), cpu) == 1
