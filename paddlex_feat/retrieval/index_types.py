"""Index types (Flat, HNSW, IVF, IVF_PQ) and ``auto``: which one, with which parameters, for a gallery.

Backend-neutral: a ``IndexPlan`` names the type and its sizes (nlist, PQ sub-vectors, HNSW links);
each store turns it into its own index (faiss: a factory string).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..utils.logger import logger

INDEX_TYPES = ("Flat", "HNSW", "IVF", "IVF_PQ")
CHOICES = INDEX_TYPES + ("auto",)
FLAT_UP_TO = 100_000  # exact search stays fast enough (a few ms per query) up to here
HNSW_M = 32  # links per node, PaddleX's HNSW32
# 200, not faiss's 40: a better graph needs half the search breadth for the same recall. 1M clustered vectors
# (bench/results/retrieval_hnsw_1m.md), ef_search 128: recall@10 0.852 with 40, 0.952 with 100, 0.969 with
# 200 at the same speed; the build takes ~2x per doubling (33-37 min at 1M on 2 cores, under the hours that
# embedding 1M images takes). M 48 or 64 cost more per step than they save (100k).
HNSW_EF_CONSTRUCTION = 200
# the graph's vectors in float16: the index in ~0.63x Flat's memory instead of 1.13x, and half the bytes each
# search step reads (1.45x the single-query speed at 100k; at 1M the same speed), the same recall to 0.003:
# unit-length 512-d features lose nothing that ranks them (a score's rounding error is ~1e-5, the gaps
# between neighbours ~1e-3). "fp32" is faiss's IndexHNSWFlat, as PaddleX and older indexes hold it.
HNSW_STORAGE = "fp16"
# recall@10 0.969 at 1M on the bench's clustered vectors, 95x to 117x exact search's single-query speed
# (104: 0.951 at 138x); the per-query knob Index.ef_search is where users trade speed for recall
DEFAULT_EF_SEARCH = 128
# k-means wants >= 39 points per centroid (faiss warns below); under that IVF is not worth training
MIN_POINTS_PER_LIST = 39
# 16 centroids per sub-quantizer, two sub-vectors a byte: 128 x 4 bits on 512-d is as small as 64 x 8 bits
# and as accurate, and trains ~10x faster (k-means with 16 centroids, not 256)
PQ_BITS = 4
MIN_PQ_TRAIN = MIN_POINTS_PER_LIST * (1 << PQ_BITS)  # 624: faiss's minimum for training 16 centroids


@dataclass(frozen=True)
class IndexPlan:
    """The index to build: its type and parameters (and what was asked, when a fallback changed it)."""

    index_type: str
    params: dict[str, Any] = field(default_factory=dict)
    requested: str | None = None
    reason: str = ""


def bytes_per_vector(index_type: str, dim: int, params: dict[str, Any] | None = None) -> float:
    """Approximate memory per stored vector (codes, graph links, ids)."""
    params = params or {}
    if index_type == "HNSW":
        width = 2 if params.get("storage", HNSW_STORAGE) == "fp16" else 4
        return width * dim + 2 * 4 * params.get("M", HNSW_M) + 8 + 8  # vector, links on level 0, id, map
    if index_type == "IVF_PQ":
        return params.get("pq_m", pq_subvectors(dim)) * PQ_BITS / 8 + 8
    return 4 * dim + 8  # Flat and IVF keep the full vector


def pq_subvectors(dim: int) -> int:
    """PQ sub-vectors: one per 4 dimensions (128 x 4 bits = 64 bytes for 512-d, 3% of float32), dividing dim."""
    m = max(1, dim // 4)
    while dim % m:
        m -= 1
    return m


TRAIN_POINTS_PER_LIST = 64  # k-means sample per list: training cost, not accuracy, is the limit on 2 cores


def nlist_for(n: int) -> int:
    """Inverted lists: about sqrt(n), bounded so that every list gets >= 39 training points.

    faiss suggests 4-16 x sqrt(n), but k-means on 2 cores then takes longer than the rest of the build.
    """
    return max(1, min(int(math.sqrt(n)), n // MIN_POINTS_PER_LIST))


def train_size(params: dict[str, Any]) -> int:
    """How many vectors to train an IVF (and its PQ) on: a sample, not the whole gallery."""
    return max(TRAIN_POINTS_PER_LIST * params["nlist"], MIN_PQ_TRAIN)


def default_nprobe(nlist: int) -> int:
    """Lists searched: 1/64 of them, at least 8 (all of a small index's)."""
    return min(nlist, max(8, nlist // 64))


def plan_index(
    index_type: str,
    n: int,
    dim: int,
    memory_budget_mb: float | None = None,
    nprobe: int | None = None,
    ef_search: int | None = None,
) -> IndexPlan:
    """The index for ``n`` vectors of ``dim``: ``auto`` picks by size and budget; small galleries fall back to Flat."""
    if index_type not in CHOICES:
        raise ValueError(f"index_type must be one of {', '.join(CHOICES)}; got {index_type!r}")
    requested = index_type
    reason = ""
    if index_type == "auto":
        index_type, reason = _auto_type(n, dim, memory_budget_mb)
    if index_type in ("IVF", "IVF_PQ"):
        nlist = nlist_for(n)
        small = nlist < 2 or (index_type == "IVF_PQ" and n < MIN_PQ_TRAIN)
        if small:
            need = MIN_PQ_TRAIN if index_type == "IVF_PQ" else 2 * MIN_POINTS_PER_LIST
            reason = f"{index_type} needs at least {need} vectors to train; the gallery has {n}"
            logger.info(f"Index: {reason}, so an exact Flat index is built instead.")
            return IndexPlan("Flat", {}, requested, reason)
        params: dict[str, Any] = {
            "nlist": nlist,
            "nprobe": nprobe or default_nprobe(nlist),
        }
        if index_type == "IVF_PQ":
            params.update(pq_m=pq_subvectors(dim), pq_bits=PQ_BITS)
        return IndexPlan(index_type, params, requested, reason)
    if index_type == "HNSW":
        params = {
            "M": HNSW_M,
            "ef_construction": HNSW_EF_CONSTRUCTION,
            "storage": HNSW_STORAGE,
            "ef_search": ef_search or DEFAULT_EF_SEARCH,
        }
        return IndexPlan("HNSW", params, requested, reason)
    return IndexPlan("Flat", {}, requested, reason)


def _auto_type(n: int, dim: int, memory_budget_mb: float | None) -> tuple[str, str]:
    """Flat up to FLAT_UP_TO vectors within budget, then HNSW, IVF, IVF_PQ: the first that fits."""
    budget = None if memory_budget_mb is None else memory_budget_mb * 2**20
    fits = {t: budget is None or n * bytes_per_vector(t, dim) <= budget for t in INDEX_TYPES}
    if n <= FLAT_UP_TO and fits["Flat"]:
        return "Flat", f"{n} vectors <= {FLAT_UP_TO}: exact search"
    for t in ("HNSW", "IVF", "IVF_PQ"):
        if fits[t]:
            return t, f"{n} vectors; {t} is the first of HNSW, IVF, IVF_PQ within the memory budget"
    return "IVF_PQ", f"{n} vectors; nothing fits {memory_budget_mb} MB, IVF_PQ is the smallest"
