"""The authors' training recipes (hashlearn.deep.config.RECIPES) and the trainer details."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.deep import TrainConfig, train_on_dataset  # noqa: E402
from hashlearn.deep.model import build_network  # noqa: E402
from hashlearn.deep.trainer import Trainer  # noqa: E402


def test_h2q_recipe_sets_the_authors_fields_then_the_users():
    cfg = TrainConfig.from_options({"recipe": "h2q", "loss": "dch", "lr": 3e-5, "patience": 5})
    assert (cfg.optimizer, cfg.weight_decay, cfg.schedule) == ("adam", 5e-4, "none")
    assert (cfg.head_lr_multiplier, cfg.head_init_std, cfg.epochs) == (10.0, 0.01, 100)
    assert (cfg.min_delta, cfg.batch_size, cfg.h2q_solver) == (0.05, 256, "sgd")
    assert cfg.loss_kwargs == {"variant": "h2q"}
    assert cfg.lr == 3e-5 and cfg.patience == 5  # explicit values win, even hashlearn's default
    assert cfg.quantization == TrainConfig().quantization  # never part of a recipe
    dpsh = TrainConfig.from_options({"recipe": "h2q", "loss": "dpsh"})
    assert dpsh.loss_kwargs == {"scale": 1.0, "pairs": "batch"} and dpsh.batch_size == 128
    wglhh = TrainConfig.from_options({"recipe": "h2q", "loss": "wglhh"})
    assert (wglhh.batch_size, wglhh.weight_decay) == (64, 1e-4)
    mine = TrainConfig.from_options(
        {"recipe": "h2q", "loss": "hashnet", "loss_kwargs": {"alpha": 0.2}}
    )
    assert mine.loss_kwargs == {"variant": "h2q", "alpha": 0.2}


def test_hswd_recipe_and_the_python_constructor_round_trip():
    cfg = TrainConfig(recipe="hswd", loss="hashnet", lr=2e-5)
    assert (cfg.optimizer, cfg.weight_decay, cfg.epochs, cfg.batch_size) == ("adam", 1e-5, 200, 64)
    assert cfg.val_from_database and cfg.patience == 0 and cfg.lr == 2e-5
    assert cfg.loss_kwargs == {"variant": "hswd"}
    again = TrainConfig(**json.loads(json.dumps(dataclasses.asdict(cfg))))
    assert again == cfg  # a saved config is not re-applied
    again = TrainConfig(**{**dataclasses.asdict(cfg), "batch_size": 128})
    assert again.batch_size == 128
    with pytest.raises(HashlearnInputError, match="unknown recipe"):
        TrainConfig(recipe="paper")


def test_hash_layer_initialisation_of_the_h2q_code():
    torch.manual_seed(0)
    spec = {"backbone": "mlp", "n_bits": 64, "activation": "identity", "hidden": 0,
            "in_features": 2000, "head_init_std": 0.01}  # fmt: skip
    layer = build_network(spec).head[-1]
    assert float(layer.weight.detach().std()) == pytest.approx(0.01, rel=0.05)
    assert float(layer.bias.detach().abs().max()) == 0.0


def test_hyp2_proxies_train_at_their_own_learning_rate(digits):
    X, y = digits.train.X[:100], digits.train.y[:100]
    cfg = TrainConfig(loss="hyp2", quantization="none", n_bits=8, backbone="mlp", epochs=1,
                      batch_size=50, lr=1e-4, head_lr_multiplier=5.0)  # fmt: skip
    trainer = Trainer(cfg, progress=False)
    trainer.fit(X, y, digits.train.X[100:150], digits.train.y[100:150])
    groups = {id(p): g["initial_lr"] for g in trainer.optimizer.param_groups for p in g["params"]}
    assert groups[id(trainer.loss.proxies)] == 1e-3
    assert groups[id(trainer.network.head[-1].weight)] == pytest.approx(5e-4)  # 5 × lr


def test_min_delta_stops_early_but_keeps_the_best_epoch(digits, tmp_path):
    X, y = digits.train.X[:200], digits.train.y[:200]
    cfg = TrainConfig(loss="dpsh", quantization="none", n_bits=8, backbone="mlp", epochs=6,
                      batch_size=50, patience=2, min_delta=0.5, lr=1e-2)  # fmt: skip
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    trainer.fit(X, y, digits.train.X[200:300], digits.train.y[200:300])
    maps = [h["val_map"] for h in trainer.history]
    assert trainer.status == "early_stopped" and len(maps) == 3  # no gain of 0.5 after epoch 1
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["best_epoch"] == int(np.argmax(maps)) + 1
    assert result["best_map"] == pytest.approx(max(maps))


def test_hswd_recipe_validates_on_database_items_outside_train(digits, tmp_path):
    cfg = TrainConfig.from_options({"recipe": "hswd", "loss": "dpsh", "quantization": "hswd",
                                    "n_bits": 8, "backbone": "mlp", "epochs": 1,
                                    "batch_size": 100, "val_queries": 50})  # fmt: skip
    train_on_dataset(cfg, digits, tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["n_train"] == len(digits.train.y)  # the whole training split
    assert saved["holdout"] is None
    assert saved["dataset"]["validation"] == "database sample outside train"
    assert saved["train"]["recipe"] == "hswd"


def test_cli_recipe_then_explicit_flags(tmp_path):
    from hashlearn.cli.main import main

    out = tmp_path / "run"
    argv = ["train", "--dataset", "digits", "--recipe", "hswd", "--loss", "hashnet",
            "--backbone", "mlp", "--bits", "8", "--epochs", "1", "--batch-size", "128",
            "--output", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["recipe"] == "hswd" and train["loss_kwargs"] == {"variant": "hswd"}
    assert (train["lr"], train["weight_decay"], train["epochs"]) == (1e-5, 1e-5, 1)
    assert train["batch_size"] == 128  # the flag, not the recipe's 64


def test_reproduce_train_table_takes_a_recipe(tmp_path):
    from hashlearn.reproduce import expand, load_config, run_grid

    text = """
paper = "h2q"
seeds = [0]
[dataset]
name = "digits"
[evaluation]
topk = "all"
[[deep]]
losses = ["dch"]
quantization = ["penalty"]
bits = [8]
train = { recipe = "h2q", backbone = "mlp", epochs = 1, batch_size = 64, hidden = 16 }
"""
    path = tmp_path / "grid.toml"
    path.write_text(text)
    config = load_config(path)
    assert len(expand(config)) == 1
    run_grid(config, tmp_path / "out", progress=False)
    runs = [json.loads(p.read_text()) for p in (tmp_path / "out").rglob("config.json")]
    (train,) = [r["train"] for r in runs if "train" in r]
    assert train["recipe"] == "h2q" and train["loss_kwargs"] == {"variant": "h2q"}
    assert (train["lr"], train["batch_size"], train["patience"]) == (1e-5, 64, 20)
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('recipe = "h2q"', "recipe_applied = true"))
    with pytest.raises(HashlearnInputError, match="recipe_applied"):
        load_config(bad)
