"""retrieval_metrics against a brute-force reference that sorts every query's full ranking."""

from __future__ import annotations

import numpy as np
import pytest

from paddlex_feat.metrics import retrieval_metrics, worst_queries
from paddlex_feat.utils.errors import DatasetError


def rankings(q, g, ql, gl, qid=None, gid=None, normalize=True):
    """Each query's full ranking as (gallery index, score) pairs, built and sorted explicitly.

    Same tie rule as the module: among equal scores, wrong matches are ranked first (then the
    lower gallery index). Scores are float32 dot products, as the module computes them.
    """
    q, g = np.asarray(q, np.float32), np.asarray(g, np.float32)
    if normalize:
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), np.float32(1e-12))
        g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), np.float32(1e-12))
    scores = q @ g.T
    out = []
    for i in range(len(q)):
        kept = [j for j in range(len(g)) if qid is None or qid[i] is None or qid[i] != gid[j]]
        out.append(
            sorted(
                ((j, float(scores[i, j])) for j in kept), key=lambda js: (-js[1], gl[js[0]] == ql[i], js[0])
            )
        )
    return out


def brute_force(q, g, ql, gl, topk, qid=None, gid=None, normalize=True):
    """Textbook recall@k / precision@k / mAP / mINP, read off each explicit ranking."""
    recall_hits, precisions, aps, inps, unmatched = [], [], [], [], 0
    for i, ranking in enumerate(rankings(q, g, ql, gl, qid, gid, normalize)):
        correct = [gl[j] == ql[i] for j, _ in ranking]
        if not any(correct):
            unmatched += 1
            continue
        recall_hits.append(correct.index(True))
        precisions.append([sum(correct[:k]) / k for k in topk])
        positions = [p + 1 for p, c in enumerate(correct) if c]
        aps.append(np.mean([(n + 1) / p for n, p in enumerate(positions)]))
        inps.append(len(positions) / positions[-1])  # Ye et al.: matches over the hardest match's rank
    metrics = {f"recall{k}": float(np.mean(np.array(recall_hits) < k)) for k in topk}
    for col, k in enumerate(topk):
        metrics[f"precision{k}"] = float(np.mean([p[col] for p in precisions]))
    metrics["mAP"] = float(np.mean(aps))
    metrics["mINP"] = float(np.mean(inps))
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
    result = retrieval_metrics(q, g, ql, gl, topk=[1, 3, 5, 10], block_size=7, keep_top=6)
    expected, unmatched = brute_force(q, g, ql, gl, [1, 3, 5, 10])
    assert unmatched > 0  # the seeds give unmatched queries, which must be left out
    assert_same(result, expected, unmatched)
    assert_same_top(result, rankings(q, g, ql, gl), 6)


def assert_same_top(result, ranked, keep_top):
    """The kept first results are the brute-force rankings' first results, index and score."""
    for i, ranking in enumerate(ranked):
        head = ranking[:keep_top]
        assert result.top_index[i, : len(head)].tolist() == [j for j, _ in head], i
        assert result.top_score[i, : len(head)] == pytest.approx([s for _, s in head], abs=1e-6)
        assert (result.top_index[i, len(head) :] == -1).all()


@pytest.mark.parametrize("block_size", [1, 5, 64, None])
def test_ties_match_brute_force_at_every_block_size(block_size):
    # Small integer features give exact, heavily tied dot products (normalize=False keeps them).
    rng = np.random.default_rng(3)
    q = rng.integers(-1, 2, (30, 4)).astype(np.float32)
    g = rng.integers(-1, 2, (50, 4)).astype(np.float32)
    ql, gl = rng.integers(0, 6, 30), rng.integers(0, 5, 50)
    result = retrieval_metrics(
        q, g, ql, gl, topk=[1, 2, 5], normalize=False, block_size=block_size, keep_top=8
    )
    expected, unmatched = brute_force(q, g, ql, gl, [1, 2, 5], normalize=False)
    assert_same(result, expected, unmatched)
    # With ties, only the (score, correct) sequence is fixed; wrong matches may tie among themselves.
    for i, ranking in enumerate(rankings(q, g, ql, gl, normalize=False)):
        want = [(s, gl[j] == ql[i]) for j, s in ranking[:8]]
        got = [(float(s), gl[j] == ql[i]) for j, s in zip(result.top_index[i], result.top_score[i])]
        assert got == want, i


def test_tie_between_correct_and_wrong_match_counts_against_the_query():
    q = np.array([[1.0, 0.0]])
    g = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # a wrong and a correct match tie at 1.0
    for gl in ([7, 3, 9], [3, 7, 9]):  # gallery order must not matter
        result = retrieval_metrics(q, g, [3], gl, topk=[1, 2], keep_top=3)
        assert result.metrics == {
            "recall1": 0.0, "recall2": 1.0, "precision1": 0.0, "precision2": 0.5, "mAP": 0.5, "mINP": 0.5
        }  # fmt: skip
        assert result.first_hit_rank.tolist() == [1]
        assert [gl[j] for j in result.top_index[0]] == [7, 3, 9]  # the wrong match first


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
    result = retrieval_metrics(
        feats, feats, labels, labels, topk=[1, 5], query_ids=ids, gallery_ids=ids, keep_top=4
    )
    expected, unmatched = brute_force(feats, feats, labels, labels, [1, 5], ids, ids)
    assert_same(result, expected, unmatched)
    assert_same_top(result, rankings(feats, feats, labels, labels, ids, ids), 4)
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
    assert fast.metrics.keys() == {"recall1", "recall5"}
    assert fast.metrics == {k: v for k, v in full.metrics.items() if k.startswith("recall")}


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


def test_first_results_past_the_gallery_end_are_padded():
    q, g = np.eye(3)[:2], np.eye(3)
    result = retrieval_metrics(q, g, [0, 1], [0, 1, 2], keep_top=10)
    assert result.top_index.shape == (2, 3)  # keep_top is capped at the gallery size
    assert result.top_index[0, 0] == 0 and result.top_index[1, 0] == 1


def test_subgallery_top_wrong_score_matches_a_masked_brute_force():
    rng = np.random.default_rng(8)
    q, g = rng.standard_normal((30, 8)).astype(np.float32), rng.standard_normal((50, 8)).astype(np.float32)
    ql, gl = rng.integers(0, 10, 30), rng.integers(0, 10, 50)
    keep = ~np.isin(gl, [2, 5])  # classes 2 and 5 held out
    result = retrieval_metrics(q, g, ql, gl, block_size=7, subgallery=keep)
    for i, ranking in enumerate(rankings(q, g, ql, gl)):
        wrong = [s for j, s in ranking if keep[j] and gl[j] != ql[i]]
        assert result.subgallery_top_wrong_score[i] == pytest.approx(max(wrong), abs=1e-6)
