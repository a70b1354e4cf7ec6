"""Retrieval metrics (recall@k = CMC, precision@k, mAP, mINP) of queries against a gallery, in query blocks.

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
  AP = (1/R) * sum_j j / (j + N_j) over the R positives, mAP = mean AP,
  precision@k = #{j : j + N_j <= k} / k (correct matches among the first k), averaged,
  INP = R / (R + N_R) (R over the position of the hardest correct match), mINP = mean INP.
mINP is Ye et al.'s (TPAMI 2021) 1-based definition; PaddleClas's ``mINP`` divides by the
0-based position, which overstates it and divides by zero when the only match ranks first.
Precision@k, like recall, averages over the queries that have a correct match (PaddleClas
averages over every query).
Recall needs only a count per query (one O(G) pass, cheaper than a top-k or argpartition); the
other three need the wrong-match scores sorted, one row-wise sort per block.

The same pass can keep each query's first ``keep_top`` results (ids and scores, in the ranking
above) for reports, and the best wrong score over a sub-gallery (``subgallery``: the gallery
with some classes held out, for open-set calibration), without a second pass over the gallery.
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
# The top-k and sub-gallery steps work on row chunks of at most this many scores, so their
# int64 partition indices / masked copies stay ~64 MB whatever the block size.
CHUNK_ELEMENTS = 8 * 1024 * 1024


@dataclass
class RetrievalResult:
    """Aggregate metrics plus per-query diagnostics (arrays of length num_queries)."""

    metrics: dict[str, float]  # "recall1", ..., "precision1", ..., "mAP", "mINP"
    num_queries: int
    num_unmatched: int  # queries with no same-label gallery image, left out of the metrics
    first_hit_rank: np.ndarray  # 0-based rank of the first correct match; -1 when unmatched
    average_precision: np.ndarray  # NaN when unmatched (or when mAP was not computed)
    num_positives: np.ndarray  # same-label gallery images per query (after uid exclusion)
    best_positive_index: np.ndarray  # gallery index of the best-scoring correct match; -1 if none
    best_positive_score: np.ndarray
    top_wrong_index: np.ndarray  # gallery index of the best-scoring wrong match; -1 if none
    top_wrong_score: np.ndarray
    # [num_queries, keep_top]: gallery indices / scores of each query's first results, best first
    # (-1 / NaN past the gallery's end); shape [num_queries, 0] unless keep_top was asked for.
    top_index: np.ndarray
    top_score: np.ndarray
    # Best wrong-match score within ``subgallery`` (NaN if none); all NaN unless it was given.
    subgallery_top_wrong_score: np.ndarray


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
    keep_top: int = 0,
    subgallery: np.ndarray | None = None,
) -> RetrievalResult:
    """recall@k, precision@k (each k in ``topk``), mAP and mINP of queries against the gallery, by blocks.

    ``query_ids``/``gallery_ids`` (the lists' optional third column) exclude, for each query,
    the gallery images carrying the same id (self-matches); None entries never match.
    ``compute_map=False`` gives recall only (it skips the sort).
    ``normalize=False`` trusts the features to be L2-normalised already.
    ``block_size`` is the number of queries per block (default: bounded by memory).
    ``keep_top`` keeps each query's first results; ``subgallery`` (bool per gallery image)
    asks for the best wrong score within it.
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
    keep_top = min(int(keep_top), len(gallery))
    if subgallery is not None:
        subgallery = np.asarray(subgallery, dtype=bool).reshape(-1)
        if len(subgallery) != len(gallery):
            raise ValueError(f"subgallery has {len(subgallery)} entries for {len(gallery)} gallery images")
    if normalize:
        query, gallery = l2_normalize(query), l2_normalize(gallery)

    num_q, num_g = len(query), len(gallery)
    if block_size is None:
        block_size = max(1, DEFAULT_BLOCK_ELEMENTS // max(num_g, 1))
    out = _empty_diagnostics(num_q, len(topk) if compute_map else 0, keep_top)
    for start in range(0, num_q, block_size):
        stop = min(start + block_size, num_q)
        scores = query[start:stop] @ gallery.T  # BLAS reads the transpose in place
        excluded = None if q_codes is None else q_codes[start:stop, None] == g_codes[None, :]
        block = _Block(q_labels[start:stop], excluded, slice(start, stop))
        _score_block(scores, block, g_labels, topk, compute_map, subgallery, out)

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
    hits_at_k = out.pop("hits_at_k")
    if compute_map:
        for col, k in enumerate(topk):
            metrics[f"precision{k}"] = float(np.mean(hits_at_k[matched, col] / k))
        metrics["mAP"] = float(np.mean(out["average_precision"][matched]))
        metrics["mINP"] = float(np.mean(out.pop("inverse_negative_penalty")[matched]))
    out.pop("inverse_negative_penalty", None)
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


@dataclass
class _Block:
    """The queries of one block: their labels, self-match mask and rows in the outputs."""

    labels: np.ndarray
    excluded: np.ndarray | None  # [B, G] True where a gallery image is the query itself
    rows: slice


def _score_block(
    scores: np.ndarray,
    block: _Block,
    g_labels: np.ndarray,
    topk: list[int],
    compute_map: bool,
    subgallery: np.ndarray | None,
    out: dict[str, np.ndarray],
) -> None:
    """Fill the diagnostics of one query block from its [B, G] score matrix (overwritten)."""
    num_rows, rows, offset = len(scores), block.rows, block.rows.start
    positive = block.labels[:, None] == g_labels[None, :]
    if block.excluded is not None:
        positive &= ~block.excluded
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
    if block.excluded is not None:
        np.putmask(scores, block.excluded, -np.inf)
    top_neg = scores.argmax(axis=1)
    top_neg_score = scores[np.arange(num_rows), top_neg]
    has_neg = np.isfinite(top_neg_score)
    out["top_wrong_index"][rows] = np.where(has_neg, top_neg, -1)
    out["top_wrong_score"][rows] = np.where(has_neg, top_neg_score, np.nan)
    # Wrong matches with a score >= the best correct one come first (the tie rule).
    first_hit = (scores >= best_pos_score[:, None]).sum(axis=1)
    out["first_hit_rank"][rows] = np.where(has_pos, first_hit, -1)
    if subgallery is not None:
        out["subgallery_top_wrong_score"][rows] = _masked_row_max(scores, subgallery)
    keep_top = out["top_index"].shape[1]
    if keep_top:
        index, score = _first_results(scores, pos_rows, pos_cols, pos_vals, seg_start, keep_top)
        out["top_index"][rows], out["top_score"][rows] = index, score
    if not compute_map or not has_pos.any():
        return

    scores.sort(axis=1)  # wrong-match scores ascending; the -inf entries sit at the front
    num_g = scores.shape[1]
    ks = np.asarray(topk)
    for row in np.flatnonzero(has_pos):
        seg = slice(seg_start[row], seg_start[row] + num_pos[row])
        # N_j: wrong matches scoring >= s_j, for the row's positives s_1 >= s_2 >= ...
        num_ge = num_g - np.searchsorted(scores[row], pos_vals[seg], side="left")
        j = np.arange(1, num_pos[row] + 1)
        position = j + num_ge  # 1-based place of the j-th correct match in the ranking
        out["average_precision"][offset + row] = np.mean(j / position)
        out["inverse_negative_penalty"][offset + row] = num_pos[row] / position[-1]
        # positions increase with j, so the matches within the first k are a prefix
        out["hits_at_k"][offset + row] = np.searchsorted(position, ks, side="right")


def _masked_row_max(scores: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Each row's max over the columns where ``keep`` is True (NaN when none is finite)."""
    chunk = max(1, CHUNK_ELEMENTS // max(scores.shape[1], 1))
    best = np.empty(len(scores), dtype=np.float32)
    for r in range(0, len(scores), chunk):
        best[r : r + chunk] = np.where(keep[None, :], scores[r : r + chunk], -np.inf).max(axis=1)
    return np.where(np.isfinite(best), best, np.nan)


def _first_results(
    wrong_scores: np.ndarray,
    pos_rows: np.ndarray,
    pos_cols: np.ndarray,
    pos_vals: np.ndarray,
    seg_start: np.ndarray,
    keep_top: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``keep_top`` results of each row, merged from its best wrong and best correct matches.

    The merge sorts by score, then wrong before correct (the tie rule), then gallery index.
    """
    num_rows, num_g = wrong_scores.shape
    # Best wrong matches: argpartition in row chunks (its int64 index array is 2x the floats).
    neg_idx = np.empty((num_rows, keep_top), dtype=np.int64)
    chunk = max(1, CHUNK_ELEMENTS // max(num_g, 1))
    for r in range(0, num_rows, chunk):
        part = wrong_scores[r : r + chunk]
        neg_idx[r : r + chunk] = np.argpartition(part, num_g - keep_top, axis=1)[:, num_g - keep_top :]
    neg_val = np.take_along_axis(wrong_scores, neg_idx, axis=1)
    # Best correct matches: the first keep_top of each row's (already sorted) segment.
    rank_in_row = np.arange(len(pos_rows)) - seg_start[pos_rows]
    take = rank_in_row < keep_top
    pos_idx = np.full((num_rows, keep_top), -1, dtype=np.int64)
    pos_val = np.full((num_rows, keep_top), -np.inf, dtype=np.float32)
    pos_idx[pos_rows[take], rank_in_row[take]] = pos_cols[take]
    pos_val[pos_rows[take], rank_in_row[take]] = pos_vals[take]

    index = np.concatenate([neg_idx, pos_idx], axis=1)
    score = np.concatenate([neg_val, pos_val], axis=1)
    is_correct = np.concatenate([np.zeros_like(neg_idx), np.ones_like(pos_idx)], axis=1)
    valid = np.isfinite(score)  # -inf: a masked (correct/excluded) column or padding
    order = np.lexsort((index, is_correct, -np.where(valid, score, 0), ~valid), axis=1)[:, :keep_top]
    index, score, valid = (np.take_along_axis(a, order, axis=1) for a in (index, score, valid))
    return np.where(valid, index, -1), np.where(valid, score, np.nan).astype(np.float32)


def _empty_diagnostics(num_q: int, num_k: int, keep_top: int) -> dict[str, np.ndarray]:
    return {
        "hits_at_k": np.zeros((num_q, num_k), dtype=np.int64),  # correct matches within each k
        "inverse_negative_penalty": np.full(num_q, np.nan, dtype=np.float64),
        "top_index": np.full((num_q, keep_top), -1, dtype=np.int64),
        "top_score": np.full((num_q, keep_top), np.nan, dtype=np.float32),
        "subgallery_top_wrong_score": np.full(num_q, np.nan, dtype=np.float32),
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
