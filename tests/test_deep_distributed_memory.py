"""Under DDP the per-item memories of DPSH/DSDH (latest outputs) and ADSH (query outputs,
database codes) hold every rank's rows: equal on all ranks and to a single process's at the
same global batch (DDP's buffer broadcast from rank 0 used to drop the other ranks' rows)."""

from __future__ import annotations

import os
import socket

import pytest

torch = pytest.importorskip("torch")
mp = pytest.importorskip("torch.multiprocessing")

from safetensors.torch import load_file, save_file  # noqa: E402

LOSSES = {"dpsh": ("memory.codes", "memory.filled"), "adsh": ("query_outputs", "database_codes")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(loss: str, batch_size: int):
    from hashlearn.deep import TrainConfig

    kwargs = {"n_samples": 200, "inner_epochs": 1} if loss == "adsh" else {}
    return TrainConfig(loss=loss, quantization="none", n_bits=16, backbone="mlp", epochs=2,
                       batch_size=batch_size, lr=1e-6, patience=0, seed=0, device="cpu",
                       loss_kwargs=kwargs)  # fmt: skip


def _memories(loss: str, batch_size: int) -> dict:
    from hashlearn.data import load_dataset
    from hashlearn.deep import Trainer

    ds = load_dataset("digits", progress=False)
    trainer = Trainer(_config(loss, batch_size), progress=False)
    trainer.fit(ds.train.X, ds.train.y, n_classes=10)
    state = trainer.loss.state_dict()
    return {k: state[k].clone().contiguous() for k in LOSSES[loss]}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world))  # fmt: skip
    torch.set_num_threads(1)
    from hashlearn.deep import distributed as dd

    dd.setup("gloo")
    try:
        for loss in LOSSES:
            save_file(_memories(loss, 16), f"{out}/{loss}-rank{rank}.st")
    finally:
        dd.teardown()


@pytest.mark.slow
def test_memories_gather_every_ranks_rows(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for loss, keys in LOSSES.items():
        ranks = [load_file(str(tmp_path / f"{loss}-rank{r}.st")) for r in range(2)]
        single = _memories(loss, 32)  # one process, the same global batch of 2 x 16
        for key in keys:
            assert torch.equal(ranks[0][key], ranks[1][key]), (loss, key)
            if single[key].dtype == torch.bool:
                assert torch.equal(ranks[0][key], single[key]), (loss, key)
                assert bool(single[key].any())
            else:
                torch.testing.assert_close(ranks[0][key], single[key], atol=1e-3, rtol=1e-3)
                assert float(single[key].abs().sum()) > 0
