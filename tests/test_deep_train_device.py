"""Device selection of the deep trainer (``TrainConfig.device`` / ``--device``) on real data.

This machine has no GPU: what can be checked here is the CPU path (explicit ``cpu`` is today's
default behaviour), the resolution of ``auto``, the clear errors for unavailable or unknown
devices, that run directories record the device and load / resume on a chosen one, and that the
returned model holds the best epoch's weights (kept as a CPU copy, not the live tensors).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.cli.main import main  # noqa: E402
from hashlearn.deep import TrainConfig, Trainer, load_run  # noqa: E402
from hashlearn.deep import distributed as dd  # noqa: E402
from hashlearn.deep.distributed import resolve_device  # noqa: E402

CUDA = torch.cuda.is_available()


def _config(**kwargs):
    base = dict(loss="dsdh", quantization="hswd", n_bits=16, backbone="mlp", epochs=2,
                batch_size=64, lr=3e-3, patience=0, seed=3)  # fmt: skip
    base.update(kwargs)
    return TrainConfig(**base)


def _fit(trainer, ds):
    return trainer.fit(ds.train.X, ds.train.y, n_classes=10)


def _weights(hasher):
    return [p.detach().clone() for p in hasher.network.parameters()]


def test_auto_resolves_to_the_available_device():
    assert resolve_device("auto") == torch.device("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert TrainConfig().device == "auto"


def test_explicit_cpu_trains_exactly_like_the_default(digits, tmp_path):
    """DSDH keeps per-item buffers in its loss module: they follow the device too."""
    explicit = Trainer(_config(device="cpu"), tmp_path / "cpu", progress=False)
    hasher = _fit(explicit, digits)
    assert hasher.device == torch.device("cpu") and explicit.loss.binary_codes.device.type == "cpu"
    config = json.loads((tmp_path / "cpu/config.json").read_text())
    assert config["device"] == "cpu" and config["train"]["device"] == "cpu"
    if CUDA:
        return  # the default is the GPU there: weights are not expected to match the CPU's
    default = _fit(Trainer(_config(), tmp_path / "auto", progress=False), digits)
    assert json.loads((tmp_path / "auto/config.json").read_text())["device"] == "cpu"
    for p, q in zip(_weights(hasher), _weights(default)):
        assert torch.equal(p, q)


@pytest.mark.parametrize("device", ["tpu", "gpu", "CUDA", "cuda:", "cuda:x", "cpu:0", 0, None])
def test_unknown_devices_are_refused_with_the_accepted_values(device):
    with pytest.raises(HashlearnInputError, match="'auto', 'cpu', 'cuda' or 'cuda:N'"):
        TrainConfig(device=device).validate()


def test_cuda_without_a_gpu_says_so_and_suggests_cpu(digits, tmp_path, capsys):
    if CUDA:
        with pytest.raises(HashlearnInputError, match="only .* CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
        return
    for device in ("cuda", "cuda:1"):
        TrainConfig(device=device).validate()  # a valid setting, for a machine with a GPU
        with pytest.raises(HashlearnInputError, match="CUDA is not available.*device='cpu'"):
            resolve_device(device)
        with pytest.raises(HashlearnInputError, match="CUDA is not available"):
            Trainer(_config(device=device), progress=False)
    # The CLI turns it into one clean line and exit status 2, before any data is loaded.
    code = main(["train", "--dataset", "digits", "--backbone", "mlp", "--device", "cuda",
                 "--output", str(tmp_path / "never")])  # fmt: skip
    assert code == 2 and "--device cpu" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_run_trained_on_cpu_loads_on_a_chosen_device(digits, tmp_path):
    hasher = _fit(Trainer(_config(loss="greedyhash", epochs=1), tmp_path / "run",
                          progress=False), digits)  # fmt: skip
    loaded = load_run(tmp_path / "run", device="cpu")
    assert loaded.device == torch.device("cpu")
    codes = loaded.encode(digits.database.X)
    assert isinstance(codes, np.ndarray) and codes.dtype == np.uint8
    assert np.array_equal(codes, hasher.encode(digits.database.X))
    assert loaded.to("cpu") is loaded
    with pytest.raises(HashlearnInputError, match="`device` must be"):
        load_run(tmp_path / "run", device="tpu")


def test_resume_may_name_another_device_setting(digits, tmp_path):
    """``device`` is not part of what defines a run: a run started with ``cpu`` resumes with
    ``auto`` (the CPU here) to the same weights as an uninterrupted run."""

    class Interrupted(Trainer):
        def _checkpoint(self, state, weights=None):
            super()._checkpoint(state, weights)
            if state["epoch"] == 1:
                raise KeyboardInterrupt

    straight = _fit(Trainer(_config(device="cpu"), tmp_path / "a", progress=False), digits)
    with pytest.raises(KeyboardInterrupt):
        _fit(Interrupted(_config(device="cpu"), tmp_path / "b", progress=False), digits)
    resumed = _fit(Trainer(_config(device="auto"), tmp_path / "b", resume=True,
                           progress=False), digits)  # fmt: skip
    config = json.loads((tmp_path / "b/config.json").read_text())
    assert config["train"]["device"] == "auto" and config["device"] == str(resolve_device("auto"))
    if not CUDA:
        for p, q in zip(_weights(straight), _weights(resumed)):
            assert torch.equal(p, q)


def test_returned_model_is_the_best_epoch_and_last_checkpoint_the_last(digits, tmp_path):
    """Validation mAP is made to peak at epoch 1: the returned network must hold epoch 1's
    weights (the snapshot, not the tensors training kept updating), as model.safetensors does,
    while the final checkpoint keeps the last epoch's weights for a longer resumed run."""

    class PeakFirst(Trainer):
        calls = 0

        def _validation_map(self, *args):
            self.calls += 1
            value = super()._validation_map(*args)
            return value if self.calls == 1 else value - 1.0

    trainer = PeakFirst(_config(loss="dpsh", epochs=2), tmp_path / "run", progress=False)
    hasher = _fit(trainer, digits)
    assert [h["epoch"] for h in trainer.history] == [1, 2]
    best = load_file(str(tmp_path / "run/model.safetensors"))
    last = load_file(str(tmp_path / "run/checkpoints/epoch-0002/model.safetensors"))
    net = hasher.network.state_dict()
    assert all(torch.equal(net[k], best[k]) for k in net)
    assert not all(torch.equal(net[k], last[k]) for k in net)
    assert json.loads((tmp_path / "run/result.json").read_text())["best_epoch"] == 1


def test_distributed_backend_and_process_device_follow_the_device(monkeypatch):
    assert dd.backend_for("cpu") == "gloo" and dd.backend_for(torch.device("cuda", 0)) == "nccl"
    cpu = torch.device("cpu")
    assert dd.process_device(cpu, dd.Context(rank=1, world_size=2)) == cpu
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert dd.local_rank() == 3
    explicit = torch.device("cuda", 1)  # an explicit index is kept (no GPU needed to check)
    assert dd.process_device(explicit, dd.Context(rank=3, world_size=4)) == explicit
    assert dd.process_device(torch.device("cuda"), dd.Context(rank=3, world_size=4)) == (
        torch.device("cuda", 3)
    )
    monkeypatch.setenv("LOCAL_RANK", "x")
    with pytest.raises(HashlearnInputError, match="LOCAL_RANK"):
        dd.local_rank()
