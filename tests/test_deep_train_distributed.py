"""Data-parallel training (torch.distributed, gloo) in two CPU processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
mp = pytest.importorskip("torch.multiprocessing")

from safetensors.torch import load_file, save_file  # noqa: E402

from hashlearn.deep import load_run  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world))  # fmt: skip
    torch.set_num_threads(1)
    from hashlearn.data import load_dataset
    from hashlearn.deep import TrainConfig, Trainer
    from hashlearn.deep import distributed as dd

    ctx = dd.setup("gloo")
    try:
        ds = load_dataset("digits", progress=False)
        # GreedyHash: the loss has its own trainable classifier, which DDP must sync too.
        cfg = TrainConfig(loss="greedyhash", quantization="hswd", n_bits=16, backbone="mlp",
                          epochs=3, batch_size=32, lr=3e-3, patience=0, seed=0)  # fmt: skip
        trainer = Trainer(cfg, progress=False)
        hasher = trainer.fit(ds.train.X, ds.train.y, n_classes=10)
        weights = {f"net.{k}": v for k, v in hasher.network.state_dict().items()}
        weights.update({f"loss.{k}": v for k, v in trainer.loss.state_dict().items()})
        save_file({k: v.contiguous() for k, v in weights.items()}, f"{out}/rank{ctx.rank}.st")
        Path(f"{out}/rank{ctx.rank}.json").write_text(json.dumps(trainer.history))
    finally:
        dd.teardown()


@pytest.mark.slow
def test_two_gloo_processes_end_with_identical_weights_and_lower_loss(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = load_file(str(tmp_path / "rank0.st")), load_file(str(tmp_path / "rank1.st"))
    assert a.keys() == b.keys() and any(k.startswith("loss.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = json.loads((tmp_path / "rank0.json").read_text())
    other = json.loads((tmp_path / "rank1.json").read_text())
    for key in ("loss", "similarity", "quantization", "val_map"):
        assert [h[key] for h in history] == [h[key] for h in other]
    assert history[-1]["loss"] < history[0]["loss"]


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun is not installed next to this Python")  # fmt: skip
@pytest.mark.slow
def test_cli_under_torchrun_writes_one_run(tmp_path):
    bindir = Path(sys.executable).parent
    out = tmp_path / "run"
    cmd = [str(bindir / "torchrun"), "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "--no-python", str(bindir / "hashlearn"), "train", "--dataset", "digits",
           "--backbone", "mlp", "--bits", "16", "--epochs", "2", "--output", str(out),
           "--distributed", "--quiet"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "result.json").read_text())["status"] == "finished"
    codes = load_run(out).encode(np.zeros((3, 64), dtype=np.float32))
    assert codes.shape == (3, 2)
