"""Benchmark: the gallery in Milvus Lite beside faiss, in the same run, on the same clustered vectors.

Data: ``--n`` L2-normalised 512-d vectors that are not uniform noise (ANN recall on uniform random
vectors means nothing): ``n / 50`` cluster centres drawn from a normal distribution, each vector a
unit centre plus normal noise of total norm about 0.35, then normalised. Queries:
``--queries`` fresh vectors drawn the same way (so each has true neighbours). Ground truth: exact
inner-product top-10 by numpy.

For each backend and index type: insert rate (rows/s, the store's own ``add``), the time until the
first search answers (Milvus flushes and builds segment indexes then), single-query q/s, batched
(``--batch`` queries per call) q/s and recall@10 against exact. Milvus runs through ``MilvusStore``,
the class ``Index.backend=milvus`` uses, on a temp ``*.db`` path.

    python bench/retrieval_milvus.py [--n 100000] [--queries 200] [--out bench/results/retrieval_milvus.json]

The machine may be shared with other jobs while this runs: compare the ratios between backends, not
the absolute figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paddlex_feat.retrieval.faiss_store import FaissStore  # noqa: E402
from paddlex_feat.retrieval.index_types import IndexPlan, nlist_for  # noqa: E402
from paddlex_feat.retrieval.milvus_store import MilvusStore, MilvusTarget  # noqa: E402
from paddlex_feat.retrieval.store import IndexMeta, ItemRecord  # noqa: E402

DIM, K = 512, 10


def clustered(n: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """``n`` normalised vectors around random ones of ``centres``."""
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 0.35 / np.sqrt(DIM), (n, DIM)).astype(
        np.float32
    )
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top10(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    scores = queries @ gallery.T
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1), 1)


def recall(found_rows: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(e.tolist())) / K for f, e in zip(found_rows, exact)]))


def measure(store, gallery: np.ndarray, queries: np.ndarray, exact: np.ndarray, batch: int, to_row) -> dict:
    """Insert in chunks, then time the first search, single queries, batched queries; recall@10."""
    records = [
        ItemRecord(-1, f"class {i % 1000}", f"img/{i}.jpg", hashlib.sha256(str(i).encode()).hexdigest())
        for i in range(len(gallery))
    ]
    start = time.perf_counter()
    ids = []
    for s in range(0, len(gallery), 10_000):
        ids.append(store.add(gallery[s : s + 10_000], records[s : s + 10_000]))
    insert_s = time.perf_counter() - start
    row_of = to_row(np.concatenate(ids))
    start = time.perf_counter()
    store.search(queries[:1], K)
    first_s = time.perf_counter() - start
    single = queries[: min(len(queries), 100)]
    start = time.perf_counter()
    found = [store.search(q[None], K)[1][0] for q in single]
    single_qps = len(single) / (time.perf_counter() - start)
    start = time.perf_counter()
    batched = [store.search(queries[s : s + batch], K)[1] for s in range(0, len(queries), batch)]
    batch_qps = len(queries) / (time.perf_counter() - start)
    rows = np.array([[row_of.get(int(i), -1) for i in r] for r in np.concatenate(batched)])
    return {
        "insert_rows_per_s": round(len(gallery) / insert_s, 1),
        "first_search_s": round(first_s, 2),
        "single_query_per_s": round(single_qps, 1),
        "batched_query_per_s": round(batch_qps, 1),
        "recall_at_10": round(recall(rows, exact), 4),
        "single_recall_at_10": round(
            recall(np.array([[row_of.get(int(i), -1) for i in f] for f in found]), exact[: len(single)]), 4
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "retrieval_milvus.json"))
    args = parser.parse_args()

    centres = np.random.default_rng(0).normal(size=(max(1, args.n // 50), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)  # noise of norm 0.35 against unit centres
    gallery = clustered(args.n, 1, centres)
    queries = clustered(args.queries, 2, centres)
    exact = exact_top10(queries, gallery)
    nlist = nlist_for(args.n)
    plans = {
        "Flat": IndexPlan("Flat"),
        "HNSW": IndexPlan("HNSW", {"M": 32, "ef_construction": 80, "ef_search": 128}),
        "IVF": IndexPlan("IVF", {"nlist": nlist, "nprobe": max(1, nlist // 16)}),
    }
    results = {
        "n": args.n,
        "dim": DIM,
        "queries": args.queries,
        "batch": args.batch,
        "cpus": os.cpu_count(),
        "runs": [],
    }
    for name, plan in plans.items():
        store = FaissStore.create(DIM, "IP", plan, gallery if name == "IVF" else None)
        row = measure(
            store, gallery, queries, exact, args.batch, lambda ids: {int(i): r for r, i in enumerate(ids)}
        )
        results["runs"].append({"backend": "faiss", "index_type": name, **row})
        print(json.dumps(results["runs"][-1]), flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            target = MilvusTarget(os.path.join(tmp, "bench.db"), f"bench_{name.lower()}")
            meta = IndexMeta(
                None, None, DIM, index_type=name, index_params=dict(plan.params), backend="milvus"
            )
            with MilvusStore.create(target, DIM, "IP", plan, meta=meta) as store:
                row = measure(
                    store,
                    gallery,
                    queries,
                    exact,
                    args.batch,
                    lambda ids: {int(i): r for r, i in enumerate(ids)},
                )
        results["runs"].append({"backend": "milvus-lite", "index_type": name, **row})
        print(json.dumps(results["runs"][-1]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
