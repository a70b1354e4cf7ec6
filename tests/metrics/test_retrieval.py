"""retrieval_metrics against a brute-force reference that sorts every query's full ranking."""

from __future__ import annotations

import numpy as np
import pytest

from paddlex_feat.metrics import retrieval_metrics, worst_queries
from paddlex_feat.utils.errors import DatasetError


def brute_force(q, g, ql, gl, topk, qid=None, gid=None, normalize=True):
    """Textbook recall@k / mAP: build each ranking explicitly, then read precision at each hit.

    Same tie rule as the module: among equal scores, wrong matches are ranked first.
    """
    q, g = np.asarray(q, np.float64), np.asarray(g, np.float64)
    if normalize:
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    hits, aps, unmatched = [], [], 0
    for i in range(len(q)):
        kept = [j for j in range(len(g)) if qid is None or qid[i] is None or qid[i] != gid[j]]
        ranking = sorted(kept, key=lambda j: (-float(q[i] @ g[j]), gl[j] == ql[i]))
        correct = [gl[j] == ql[i] for j in ranking]
        if not any(correct):
            unmatched += 1
            continue
        hits.append(correct.index(True))
        positions = [p + 1 for p, c in enumerate(correct) if c]
        aps.append(np.mean([(n + 1) / p for n, p in enumerate(positions)]))
    metrics = {f"recall{k}": float(np.mean(np.array(hits) < k)) for k in topk}
    metrics["mAP"] = float(np.mean(aps))
    return metrics, unmatched


def assert_same(result, expected, unmatched):
    assert result.metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert result.metrics[key] == pytest.approx(value, abs=1e-9), key
    assert result.num_unmatched == unmatched


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_features_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    q, g = rng.standard_normal((40, 16)), rng.standard_normal((70, 16))
    ql, gl = rng.integers(0, 25, 40), rng.integers(0, 20, 70)  # labels 20..24: no match
    result = retrieval_metrics(q, g, ql, gl, topk=[1, 3, 5, 10], block_size=7)
    expected, unmatched = brute_force(q, g, ql, gl, [1, 3, 5, 10])
    assert unmatched > 0  # the seeds give unmatched queries, which must be left out
    assert_same(result, expected, unmatched)


@pytest.mark.parametrize("block_size", [1, 5, 64, None])
def test_ties_match_brute_force_at_every_block_size(block_size):
    # Small integer features give exact, heavily tied dot products (normalize=False keeps them).
    rng = np.random.default_rng(3)
    q = rng.integers(-1, 2, (30, 4)).astype(np.float32)
    g = rng.integers(-1, 2, (50, 4)).astype(np.float32)
    ql, gl = rng.integers(0, 6, 30), rng.integers(0, 5, 50)
    result = retrieval_metrics(q, g, ql, gl, topk=[1, 2, 5], normalize=False, block_size=block_size)
    expected, unmatched = brute_force(q, g, ql, gl, [1, 2, 5], normalize=False)
    assert_same(result, expected, unmatched)


def test_tie_between_correct_and_wrong_match_counts_against_the_query():
    q = np.array([[1.0, 0.0]])
    g = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # a wrong and a correct match tie at 1.0
    for gl in ([7, 3, 9], [3, 7, 9]):  # gallery order must not matter
        result = retrieval_metrics(q, g, [3], gl, topk=[1, 2])
        assert result.metrics == {"recall1": 0.0, "recall2": 1.0, "mAP": 0.5}
        assert result.first_hit_rank.tolist() == [1]


def test_collapsed_model_scores_zero_recall():
    rng = np.random.default_rng(4)
    gl = rng.integers(0, 10, 60)
    result = retrieval_metrics(np.ones((20, 8)), np.ones((60, 8)), gl[:20], gl, topk=[1])
    assert result.metrics["recall1"] == 0.0


def test_unique_ids_exclude_self_matches():
    rng = np.random.default_rng(5)
    feats = rng.standard_normal((30, 8))
    labels = rng.integers(0, 6, 30)
    ids = [f"img{i}" for i in range(30)]
    ids[3] = None  # an image without an id is never excluded
    result = retrieval_metrics(feats, feats, labels, labels, topk=[1, 5], query_ids=ids, gallery_ids=ids)
    expected, unmatched = brute_force(feats, feats, labels, labels, [1, 5], ids, ids)
    assert_same(result, expected, unmatched)
    without_ids = retrieval_metrics(feats, feats, labels, labels, topk=[1])
    assert without_ids.metrics["recall1"] == 1.0  # each query finds itself
    assert result.metrics["recall1"] < 1.0


def test_no_query_with_a_match_is_a_clear_error():
    with pytest.raises(DatasetError, match="No query has a same-label gallery image"):
        retrieval_metrics(np.eye(3), np.eye(3), [0, 1, 2], [5, 6, 7])


def test_recall_only_skips_map_but_keeps_recall():
    rng = np.random.default_rng(6)
    q, g = rng.standard_normal((25, 8)), rng.standard_normal((40, 8))
    ql, gl = rng.integers(0, 8, 25), rng.integers(0, 8, 40)
    full = retrieval_metrics(q, g, ql, gl, topk=[1, 5])
    fast = retrieval_metrics(q, g, ql, gl, topk=[1, 5], compute_map=False)
    assert "mAP" not in fast.metrics
    assert fast.metrics == {k: v for k, v in full.metrics.items() if k != "mAP"}


def test_worst_queries_are_failures_ordered_by_rank():
    rng = np.random.default_rng(7)
    q, g = rng.standard_normal((50, 8)), rng.standard_normal((80, 8))
    ql, gl = rng.integers(0, 10, 50), rng.integers(0, 10, 80)
    result = retrieval_metrics(q, g, ql, gl)
    worst = worst_queries(result, n=10)
    ranks = result.first_hit_rank[worst]
    assert len(worst) == 10 and (ranks > 0).all()
    assert list(ranks) == sorted(ranks, reverse=True)
    assert ranks[0] == result.first_hit_rank.max()
    for i in worst:  # the reported top-1 wrong match is a wrong match scoring above every correct one
        assert gl[result.top_wrong_index[i]] != ql[i]
        assert result.top_wrong_score[i] >= result.best_positive_score[i]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query_features": np.zeros((0, 4))}, "non-empty"),
        ({"gallery_features": np.ones((3, 5))}, "4-d but gallery features are 5-d"),
        ({"query_labels": [0, 1]}, "3 query features but 2 query labels"),
        ({"query_features": np.full((3, 4), np.nan)}, "NaN or Inf"),
        ({"topk": [0]}, "topk"),
    ],
)
def test_bad_inputs_are_refused(kwargs, message):
    args = {
        "query_features": np.ones((3, 4)),
        "gallery_features": np.ones((3, 4)),
        "query_labels": [0, 1, 2],
        "gallery_labels": [0, 1, 2],
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(**args)
