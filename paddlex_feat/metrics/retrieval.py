"""Retrieval metrics (recall@k = CMC, mAP) of query features against a gallery, in query blocks.

Features are L2-normalised and ranked by dot product (descending). A query counts only when the
gallery holds at least one image with its label ("positive"); the others are left out and
counted in ``RetrievalResult.num_unmatched``.

Tie rule (documented, and shared by the brute-force reference in the tests): a wrong match
whose score EQUALS a correct match's score is ranked BEFORE it. Ties therefore never help a
model: a collapsed model whose features are all equal scores recall 0, not "whatever the
gallery order happens to give". Ties among correct matches do not change any metric. The
result depends neither on the gallery order nor on the block size.

With that rule, if the j-th best positive has score s_j and N_j wrong matches score >= s_j, it
sits at 1-based position ``j + N_j``. Hence:
  first-hit rank (0-based) = N_1, recall@k = mean(N_1 < k),
  AP = (1/R) * sum_j j / (j + N_j) over the R positives, mAP = mean AP.
Recall needs only a count per query (one O(G) pass, cheaper than a top-k or argpartition); mAP
needs the wrong-match scores sorted, one row-wise sort per block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..utils.arrays import l2_normalize
from ..utils.errors import DatasetError

# A block's similarity matrix holds at most this many float32 scores (~256 MB); its masks and
# sort copy are the same order, so the peak stays around 1 GB above the features themselves.
DEFAULT_BLOCK_ELEMENTS = 64 * 1024 * 1024


@dataclass
class RetrievalResult:
    """Aggregate metrics plus per-query diagnostics (arrays of length num_queries)."""

    metrics: dict[str, float]  # "recall1", "recall5", ..., "mAP"
    num_queries: int
    num_unmatched: int  # queries with no same-label gallery image, left out of the metrics
    first_hit_rank: np.ndarray  # 0-based rank of the first correct match; -1 when unmatched
    average_precision: np.ndarray  # NaN when unmatched (or when mAP was not computed)
    num_positives: np.ndarray  # same-label gallery images per query (after uid exclusion)
    best_positive_index: np.ndarray  # gallery index of the best-scoring correct match; -1 if none
    best_positive_score: np.ndarray
    top_wrong_index: np.ndarray  # gallery index of the best-scoring wrong match; -1 if none
    top_wrong_score: np.ndarray


def retrieval_metrics(
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    query_labels: Sequence[int] | np.ndarray,
    gallery_labels: Sequence[int] | np.ndarray,
    topk: Sequence[int] = (1, 5),
    query_ids: Sequence[str | None] | None = None,
    gallery_ids: Sequence[str | None] | None = None,
    compute_map: bool = True,
    normalize: bool = True,
    block_size: int | None = None,
) -> RetrievalResult:
    """recall@k for each k in ``topk`` and mAP of queries against the gallery, block by block.

    ``query_ids``/``gallery_ids`` (the lists' optional third column) exclude, for each query,
    the gallery images carrying the same id (self-matches); None entries never match.
    ``normalize=False`` trusts the features to be L2-normalised already.
    ``block_size`` is the number of queries per block (default: bounded by memory).
    Raises DatasetError when no query has a same-label gallery image.
    """
    query = _as_features(query_features, "query")
    gallery = _as_features(gallery_features, "gallery")
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query features are {query.shape[1]}-d but gallery features are {gallery.shape[1]}-d"
        )
    q_labels = _as_labels(query_labels, len(query), "query")
    g_labels = _as_labels(gallery_labels, len(gallery), "gallery")
    topk = _check_topk(topk)
    q_codes, g_codes = _id_codes(query_ids, gallery_ids, len(query), len(gallery))
    if normalize:
        query, gallery = l2_normalize(query), l2_normalize(gallery)

    num_q, num_g = len(query), len(gallery)
    if block_size is None:
        block_size = max(1, DEFAULT_BLOCK_ELEMENTS // max(num_g, 1))
    out = _empty_diagnostics(num_q)
    for start in range(0, num_q, block_size):
        stop = min(start + block_size, num_q)
        scores = query[start:stop] @ gallery.T  # BLAS reads the transpose in place
        excluded = None if q_codes is None else q_codes[start:stop, None] == g_codes[None, :]
        _score_block(scores, q_labels[start:stop], g_labels, excluded, compute_map, out, start)

    matched = out["num_positives"] > 0
    num_matched = int(matched.sum())
    if num_matched == 0:
        raise DatasetError(
            f"No query has a same-label gallery image ({num_q} queries, {num_g} gallery images), "
            "so recall and mAP are undefined. The query and gallery lists must share labels: "
            "check that query.txt and gallery.txt use the same label for the same class."
        )
    ranks = out["first_hit_rank"][matched]
    metrics = {f"recall{k}": float(np.mean(ranks < k)) for k in topk}
    if compute_map:
        metrics["mAP"] = float(np.mean(out["average_precision"][matched]))
    return RetrievalResult(metrics=metrics, num_queries=num_q, num_unmatched=num_q - num_matched, **out)


def worst_queries(result: RetrievalResult, n: int = 10) -> list[int]:
    """Indices of the ``n`` failing queries (top-1 wrong) ranked worst first.

    Worst = the first correct match is furthest down the ranking; among equal ranks, the
    wrong top-1 beats the best correct match by the widest score margin.
    """
    failing = np.flatnonzero(result.first_hit_rank > 0)
    if len(failing) == 0:
        return []
    margin = result.top_wrong_score[failing] - result.best_positive_score[failing]
    order = np.lexsort((-margin, -result.first_hit_rank[failing]))
    return failing[order[:n]].tolist()


def _score_block(
    scores: np.ndarray,
    q_labels: np.ndarray,
    g_labels: np.ndarray,
    excluded: np.ndarray | None,
    compute_map: bool,
    out: dict[str, np.ndarray],
    offset: int,
) -> None:
    """Fill the diagnostics of one query block from its [B, G] score matrix (overwritten)."""
    num_rows = len(scores)
    rows = slice(offset, offset + num_rows)
    positive = q_labels[:, None] == g_labels[None, :]
    if excluded is not None:
        positive &= ~excluded
    # Correct matches, grouped by row and best first; ties keep the lower gallery index.
    pos_rows, pos_cols = np.nonzero(positive)
    pos_vals = scores[pos_rows, pos_cols]
    order = np.lexsort((-pos_vals, pos_rows))
    pos_rows, pos_cols, pos_vals = pos_rows[order], pos_cols[order], pos_vals[order]
    num_pos = np.bincount(pos_rows, minlength=num_rows)
    seg_start = np.concatenate(([0], np.cumsum(num_pos)[:-1]))
    has_pos = num_pos > 0
    first = seg_start[has_pos]
    best_pos_score = np.full(num_rows, -np.inf, dtype=np.float32)
    best_pos_score[has_pos] = pos_vals[first]
    out["num_positives"][rows] = num_pos
    out["best_positive_index"][offset + np.flatnonzero(has_pos)] = pos_cols[first]
    out["best_positive_score"][offset + np.flatnonzero(has_pos)] = pos_vals[first]

    # From here on `scores` holds wrong matches only: correct and excluded ones become -inf,
    # in place, so a block never needs a second [B, G] float copy.
    np.putmask(scores, positive, -np.inf)
    del positive
    if excluded is not None:
        np.putmask(scores, excluded, -np.inf)
    top_neg = scores.argmax(axis=1)
    top_neg_score = scores[np.arange(num_rows), top_neg]
    has_neg = np.isfinite(top_neg_score)
    out["top_wrong_index"][rows] = np.where(has_neg, top_neg, -1)
    out["top_wrong_score"][rows] = np.where(has_neg, top_neg_score, np.nan)
    # Wrong matches with a score >= the best correct one come first (the tie rule).
    first_hit = (scores >= best_pos_score[:, None]).sum(axis=1)
    out["first_hit_rank"][rows] = np.where(has_pos, first_hit, -1)
    if not compute_map or not has_pos.any():
        return

    scores.sort(axis=1)  # wrong-match scores ascending; the -inf entries sit at the front
    num_g = scores.shape[1]
    ap = np.full(num_rows, np.nan)
    for row in np.flatnonzero(has_pos):
        seg = slice(seg_start[row], seg_start[row] + num_pos[row])
        # N_j: wrong matches scoring >= s_j, for the row's positives s_1 >= s_2 >= ...
        num_ge = num_g - np.searchsorted(scores[row], pos_vals[seg], side="left")
        j = np.arange(1, num_pos[row] + 1)
        ap[row] = np.mean(j / (j + num_ge))
    out["average_precision"][rows] = ap


def _empty_diagnostics(num_q: int) -> dict[str, np.ndarray]:
    return {
        "first_hit_rank": np.full(num_q, -1, dtype=np.int64),
        "average_precision": np.full(num_q, np.nan, dtype=np.float64),
        "num_positives": np.zeros(num_q, dtype=np.int64),
        "best_positive_index": np.full(num_q, -1, dtype=np.int64),
        "best_positive_score": np.full(num_q, np.nan, dtype=np.float32),
        "top_wrong_index": np.full(num_q, -1, dtype=np.int64),
        "top_wrong_score": np.full(num_q, np.nan, dtype=np.float32),
    }


def _as_features(features: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name} features must be a non-empty [N, D] array, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise ValueError(f"{bad} {name} feature row(s) hold NaN or Inf; the model output is broken")
    return array


def _as_labels(labels: Sequence[int] | np.ndarray, count: int, name: str) -> np.ndarray:
    array = np.asarray(labels).reshape(-1)
    if len(array) != count:
        raise ValueError(f"{count} {name} features but {len(array)} {name} labels")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} labels must be integers, got dtype {array.dtype}")
    return array.astype(np.int64)


def _check_topk(topk: Sequence[int]) -> list[int]:
    ks = [int(k) for k in topk]
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"topk must be a non-empty list of integers >= 1, got {list(topk)}")
    return sorted(set(ks))


def _id_codes(
    query_ids: Sequence[str | None] | None,
    gallery_ids: Sequence[str | None] | None,
    num_q: int,
    num_g: int,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Integer codes for the unique ids (None -> a code that matches nothing), or (None, None)."""
    if query_ids is None or gallery_ids is None:
        return None, None
    if len(query_ids) != num_q or len(gallery_ids) != num_g:
        raise ValueError(
            f"{len(query_ids)} query ids for {num_q} queries / {len(gallery_ids)} gallery ids "
            f"for {num_g} gallery images"
        )
    table: dict[str, int] = {}

    def codes(ids: Sequence[str | None], none_code: int) -> np.ndarray:
        return np.array(
            [none_code if uid is None else table.setdefault(str(uid), len(table)) for uid in ids],
            dtype=np.int64,
        )

    # Distinct negative codes for None on each side, so a None never equals anything.
    return codes(query_ids, -1), codes(gallery_ids, -2)
