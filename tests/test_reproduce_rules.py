"""Our numbers beside a paper's are scored under that paper's rules (ties, AP normalisation,
cut-off) on the paper's database protocol; a record scored otherwise shows no difference."""

import json
from pathlib import Path

import numpy as np
import pytest

from hashlearn.catalogue import make_method
from hashlearn.data import load_dataset
from hashlearn.metrics import mean_average_precision, precision_at_k
from hashlearn.reproduce import load_config, run_grid
from hashlearn.reproduce.config import config_hash, parse_config
from hashlearn.reproduce.published import PUBLISHED, RULES, comparison_rules, table_value
from hashlearn.reproduce.report import published_sections
from hashlearn.reproduce.revisions import revisions_of as _revisions


def write_cifar_like(folder: Path, per_class: int = 750) -> None:
    """A CIFAR-10-shaped pool of random images in the official binary format (5 + 1 files)."""
    rng = np.random.default_rng(0)
    y = rng.permutation(np.repeat(np.arange(10), per_class)).astype(np.uint8)
    pixels = rng.integers(0, 256, (len(y), 3072), dtype=np.uint8)
    folder.mkdir(parents=True)
    cuts = np.linspace(0, len(y) - 10 * 100, 6).astype(int).tolist() + [len(y)]
    stems = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for stem, a, b in zip(stems, cuts[:-1], cuts[1:]):
        np.concatenate([y[a:b, None], pixels[a:b]], axis=1).tofile(folder / f"{stem}.bin")


@pytest.fixture
def cifar_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("HASHLEARN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_cifar_like(tmp_path / "data" / "cifar-10-batches-bin")
    return tmp_path / "data"


def _config(paper, protocol, data_dir, **dataset):
    return parse_config(
        {
            "paper": paper,
            "dataset": {"name": "cifar10", "protocol": protocol, "data_dir": str(data_dir)},
            "evaluation": {"topk": "all", "k": 20},
            "shallow": [{"methods": ["lsh"], "bits": [8], "seeds": [0], "dataset": dataset}],
        }
    )


def test_comparison_rules_name_the_papers_choices():
    assert RULES["h2q"] == {"ties": "continuous", "no_relevant": "zero"}
    assert comparison_rules("h2q", "cifar10", "h2q") == {
        "cifar10:map": {"topk": 5000, "k": 100, "ties": "continuous", "no_relevant": "zero"}
    }
    hswd = comparison_rules("hswd", "cifar10", "hswd")
    assert hswd["cifar10:map"]["topk"] == "all" and hswd["cifar10:map"]["no_relevant"] == "zero"
    assert hswd["cifar10:precision_at_1000"]["k"] == 1000
    assert comparison_rules("h2q", "cifar10", "hswd") == {}  # another database protocol
    assert comparison_rules("h2q", "digits", None) == {}


@pytest.mark.parametrize(("paper", "protocol"), [("h2q", "h2q"), ("hswd", "hswd")])
def test_cells_are_scored_under_the_papers_rules(cifar_dir, tmp_path, paper, protocol):
    records = run_grid(
        _config(paper, protocol, cifar_dir), tmp_path / "out", download=False, progress=False
    )
    (record,) = records
    ds = load_dataset("cifar10", protocol=protocol, data_dir=cifar_dir, download=False)
    model = make_method("lsh", n_bits=8, random_state=0).fit(ds.train.X, ds.train.y)
    q, db = ds.query.X, ds.database.X
    rules = RULES[paper]
    emb = {}
    if rules["ties"] == "continuous":
        emb = {"query_embeddings": model.transform(q), "db_embeddings": model.transform(db)}
    topk = ds.resolve_topk("protocol") if paper == "h2q" else None
    expected = mean_average_precision(
        model.encode(q), model.encode(db), ds.query.y, ds.database.y, topk=topk, **rules, **emb
    )
    scored = record["rules"]["cifar10:map"]
    assert scored["map"] == pytest.approx(float(expected), abs=1e-12)
    assert (scored["ties"], scored["no_relevant"]) == (rules["ties"], rules["no_relevant"])
    # The config's own rules (stable ties, queries without relevant items skipped, mAP@all)
    # stay the record's main numbers.
    assert record["ties"] == "stable" and record["topk"] is None
    if paper == "hswd":
        p1000 = precision_at_k(
            model.encode(q), model.encode(db), ds.query.y, ds.database.y, k=1000,
            no_relevant="zero",
        )  # fmt: skip
        table = next(t for t in PUBLISHED["hswd"]["tables"] if t["metric"] != "map")
        assert table_value(record, table) == pytest.approx(float(p1000), abs=1e-12)


def test_capped_splits_are_not_compared(cifar_dir, tmp_path):
    config = _config("h2q", "h2q", cifar_dir, max_items={"database": 200})
    (record,) = run_grid(config, tmp_path / "out", download=False, progress=False)
    assert "rules" not in record


def test_report_prints_a_difference_only_for_records_under_the_papers_rules():
    table = PUBLISHED["h2q"]["tables"][0]
    base = {"kind": "deep", "label": "", "dataset": "cifar10", "protocol": "h2q"}
    base.update(method="dch", quantization="none", bits=16, label_noise=0, map=0.5)
    scored = {**base, "rules": {"cifar10:map": {"map": 0.70, "precision_at_k": 0.6}}}
    published = table["rows"][("dch", "none")][16]

    def dch_row(records):
        sections = published_sections(records, "h2q")
        rows = next(body for kind, body in sections if kind == "table")[1]
        return next(r for r in rows if r[0] == "dch+none" and r[1] == "16")

    assert dch_row([scored])[3:] == ["0.7000", f"{0.70 - published:+.4f}"]
    assert dch_row([base])[3:] == ["-", "-"]  # measured under other rules: not compared


ROOT = Path(__file__).resolve().parents[1]


def test_committed_results_folders_keep_their_hash_unless_a_revision_applies(monkeypatch):
    """A folder written before a revision has the config's old hash (and is refused on
    resume); one written since has the current hash; a config no revision touches keeps its
    hash."""
    import hashlearn.reproduce.config as config_module

    checked = 0
    for saved in sorted((ROOT / "reports").glob("*/config.json")):
        toml = ROOT / "configs" / f"{saved.parent.name}.toml"
        if not toml.is_file():
            continue
        config = load_config(toml)
        stored = json.loads(saved.read_text())["config_sha256"]
        current = config_hash(config)
        with monkeypatch.context() as patch:
            patch.setattr(config_module, "revisions_of", lambda _config: [])
            before = config_module.config_hash(config)
        if _revisions(config):
            assert current != before and stored in (current, before), saved.parent.name
        else:
            assert stored == current == before, saved.parent.name
        checked += 1
    assert checked >= 3
    h2q = load_config(ROOT / "configs" / "h2q-cifar10.toml")
    assert _revisions(h2q) == ["itq-uncentred", "cifar10-h2q-53000"]
    assert _revisions(load_config(ROOT / "configs" / "hswd-cifar10.toml")) == []


def test_h2q_sgd_configs_carry_the_solver_revision():
    block = {"methods": ["h2q"], "bits": [8], "params": {"h2q": {"solver": "sgd"}}}
    config = parse_config({"dataset": {"name": "digits"}, "shallow": [block]})
    assert _revisions(config) == ["h2q-sgd-authors"]
    block["params"] = {"solver": "fast"}
    assert _revisions(parse_config({"dataset": {"name": "digits"}, "shallow": [block]})) == []
