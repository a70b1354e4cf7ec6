"""Index types on clustered vectors: every type removes, small galleries fall back to Flat, auto measures recall."""

from __future__ import annotations

import logging

import faiss
import numpy as np
import pytest

from paddlex_feat.retrieval import GalleryIndex, load_index
from paddlex_feat.retrieval.index import exact_topk
from paddlex_feat.retrieval.index_types import HNSW_EF_CONSTRUCTION, MIN_PQ_TRAIN, plan_index


def clustered(n: int, dim: int = 64, clusters: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres (ANN recall on uniform noise means nothing)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("index_type", ["Flat", "HNSW", "IVF"])
def test_remove_works_on_every_type_and_answers_keep_their_ids(index_type, tmp_path):
    x = clustered(2000)
    index = GalleryIndex.from_vectors(x, [f"item {i}" for i in range(2000)], index_type=index_type, nprobe=64)
    assert index.meta.index_type == index_type and index.meta.recall_at_10 >= 0.9
    removed = list(range(0, 2000, 3))
    index.remove(removed)
    kept = np.array([i for i in range(2000) if i % 3])
    res = index.search_vectors(x[kept[:50]], top_k=1)
    # every kept vector still finds itself under its own id (IndexIDMap2 over IVF would shift them)
    assert [r["ids"][0] for r in res] == kept[:50].tolist()
    assert all(r["labels"][0] == f"item {i}" for r, i in zip(res, kept[:50]))
    found = {i for r in index.search_vectors(x[:200], top_k=10) for i in r["ids"]}
    assert not found & set(removed)
    index.save(tmp_path / "idx")
    again = load_index(tmp_path / "idx")
    assert len(again) == len(kept) and again.search_vectors(x[kept[:5]], 1)[0]["ids"] == [int(kept[0])]


def test_hnsw_tombstones_until_compact():
    x = clustered(500)
    index = GalleryIndex.from_vectors(x, [str(i) for i in range(500)], index_type="HNSW")
    index.remove([0, 1, 2])
    assert index.store.tombstones == 3 and index.store.index.ntotal == 500
    assert index.search_vectors(x[:1], top_k=5)[0]["ids"][0] not in (0, 1, 2)
    assert index.compact() == 3 and index.store.index.ntotal == 497 and index.store.tombstones == 0
    assert index.search_vectors(x[3:4], top_k=1)[0]["ids"] == [3]


def test_hnsw_graph_holds_float16_vectors_and_ranks_as_exact_search_does(tmp_path):
    x = clustered(2000)
    index = GalleryIndex.from_vectors(x, [str(i) for i in range(2000)], index_type="HNSW")
    inner = faiss.downcast_index(index.store.index.index)
    assert isinstance(inner, faiss.IndexHNSWSQ) and index.meta.index_params["storage"] == "fp16"
    assert inner.hnsw.efConstruction == HNSW_EF_CONSTRUCTION
    found = index.search_vectors(x[:100], top_k=10)
    exact = exact_topk(x[:100], x, 10)
    assert [r["ids"][0] for r in found] == list(range(100))  # each vector finds itself first
    assert np.mean([len(set(r["ids"]) & set(e)) / 10 for r, e in zip(found, exact)]) >= 0.98
    scores = np.array([r["scores"][0] for r in found])
    assert np.abs(scores - 1.0).max() < 1e-3  # float16 rounding of a unit vector's score to itself
    # two bytes a dimension fewer than a float32 graph, on disk as in memory
    index.save(tmp_path / "fp16")
    fp32 = GalleryIndex.from_vectors(x, [str(i) for i in range(2000)], index_type="HNSW")
    fp32.store.index = _fp32_graph(x)
    fp32.save(tmp_path / "fp32")
    sizes = {k: (tmp_path / k / "vector.index").stat().st_size for k in ("fp16", "fp32")}
    assert sizes["fp32"] - sizes["fp16"] >= 0.95 * x.size * 2


def _fp32_graph(x: np.ndarray) -> faiss.Index:
    """A float32 HNSW graph over ``x`` as indexes made before float16 graphs (and PaddleX's) hold it."""
    index = faiss.IndexIDMap2(faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT))
    index.add_with_ids(x, np.arange(len(x), dtype=np.int64))
    return index


@pytest.mark.parametrize("graph", ["fp16", "fp32"])
def test_compact_keeps_the_graphs_storage(graph):
    x = clustered(500)
    index = GalleryIndex.from_vectors(x, [str(i) for i in range(500)], index_type="HNSW")
    if graph == "fp32":  # an index saved before float16 graphs
        index.store.index = _fp32_graph(x)
    index.remove([0, 1])
    assert index.compact() == 2
    inner = faiss.downcast_index(index.store.index.index)
    assert isinstance(inner, faiss.IndexHNSWSQ if graph == "fp16" else faiss.IndexHNSWFlat)
    assert index.search_vectors(x[2:3], top_k=1)[0]["ids"] == [2]


def test_ivf_and_pq_on_a_small_gallery_fall_back_to_flat_with_one_log_line(caplog):
    x = clustered(60)
    with caplog.at_level(logging.INFO, logger="paddlex_feat"):
        index = GalleryIndex.from_vectors(x, ["a"] * 60, index_type="IVF")
    assert index.meta.index_type == "Flat" and index.meta.index_params["requested"] == "IVF"
    assert sum("Flat index is built instead" in r.message for r in caplog.records) == 1
    assert plan_index("IVF_PQ", MIN_PQ_TRAIN - 1, 512).index_type == "Flat"
    assert plan_index("IVF", 7, 512).index_type == "Flat"  # PaddleX builds IVF0 here and fails


def test_ivf_pq_is_small_and_reasonably_accurate():
    x = clustered(2000, dim=32)
    index = GalleryIndex.from_vectors(x, ["a"] * len(x), index_type="IVF_PQ", nprobe=32)
    assert index.meta.index_type == "IVF_PQ" and index.meta.index_params["pq_m"] == 8
    assert 0.2 < index.meta.recall_at_10 <= 1.0


def test_auto_picks_by_size_and_budget_and_writes_measured_recall():
    assert plan_index("auto", 1000, 512).index_type == "Flat"
    assert plan_index("auto", 200_000, 512).index_type == "HNSW"
    assert plan_index("auto", 200_000, 512, memory_budget_mb=250).index_type == "HNSW"  # fp16 graph: 247 MB
    assert plan_index("auto", 200_000, 512, memory_budget_mb=240).index_type == "IVF_PQ"  # IVF: 392 MB
    assert plan_index("auto", 200_000, 512, memory_budget_mb=50).index_type == "IVF_PQ"
    assert plan_index("auto", 1000, 512, memory_budget_mb=1).index_type == "IVF_PQ"  # Flat needs 2 MB
    x = clustered(3000, dim=32)
    index = GalleryIndex.from_vectors(x, ["a"] * 3000, index_type="auto", memory_budget_mb=0.2)
    assert index.meta.index_type == "IVF_PQ" and index.meta.index_params["requested"] == "auto"
    found = np.array([r["ids"] for r in index.search_vectors(x[:200], top_k=10)])
    exact = exact_topk(x[:200], x, 10)
    measured = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])
    assert abs(index.meta.recall_at_10 - measured) < 0.15  # the meta's figure is a real measurement


def test_exact_topk_matches_a_full_sort():
    x = clustered(300, dim=16)
    q = x[:7]
    full = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :5]
    assert (exact_topk(q, x, 5, chunk=64) == full).all()
