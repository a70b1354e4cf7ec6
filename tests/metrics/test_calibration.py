"""Open-set calibration against a brute force that answers every query at every threshold."""

from __future__ import annotations

import numpy as np
import pytest

from paddlex_feat.metrics import calibrate, held_out_classes, retrieval_metrics


def clustered(seed, num_q=60, num_g=90, classes=15, spread=1.2):
    """Unit features around class centres: a model that is right often, not always."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, 16))
    ql, gl = rng.integers(0, classes, num_q), rng.integers(0, classes, num_g)
    q = centres[ql] + spread * rng.standard_normal((num_q, 16))
    g = centres[gl] + spread * rng.standard_normal((num_g, 16))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return q.astype(np.float32), g.astype(np.float32), ql, gl


def brute_force_outcomes(q, g, ql, gl, keep):
    """Per query, against the kept gallery: (top-1 score, in gallery, top-1 correct), by explicit ranking."""
    scores = q @ g.T
    out = []
    for i in range(len(q)):
        ranked = sorted(np.flatnonzero(keep), key=lambda j: (-scores[i, j], gl[j] == ql[i]))
        in_gallery = any(gl[j] == ql[i] for j in ranked)
        out.append((float(scores[i, ranked[0]]), in_gallery, gl[ranked[0]] == ql[i]))
    return out


def brute_force_rates(outcomes, t):
    unknown = [s for s, known, _ in outcomes if not known]
    right = [s for s, known, ok in outcomes if known and ok]
    known = [(s, ok) for s, k, ok in outcomes if k]
    fa = np.mean([s >= np.float32(t) for s in unknown])
    fr = np.mean([s < np.float32(t) for s in right])
    wrong = np.mean([s >= np.float32(t) and not ok for s, ok in known])
    return fa, fr, wrong


def check_against_brute_force(cal, outcomes, max_fa):
    fa, fr, wrong = brute_force_rates(outcomes, cal.threshold)
    assert (cal.false_accept, cal.false_reject, cal.wrong_answers) == pytest.approx((fa, fr, wrong))
    assert round(cal.threshold, 4) == cal.threshold  # a short number to paste into a config
    if max_fa is not None:
        assert fa <= max_fa
        assert brute_force_rates(outcomes, cal.threshold - 1e-4)[0] > max_fa  # the lowest that meets it
    else:  # equal error: no grid threshold brings FA and FR closer
        grid = np.round(np.arange(-1.0, 1.0001, 1e-4), 4)
        gaps = [abs(np.subtract(*brute_force_rates(outcomes, t)[:2])) for t in grid[::7]]
        assert abs(fa - fr) <= min(gaps) + 1e-12


@pytest.mark.parametrize("max_fa", [0.05, 0.2, None])
def test_queries_out_of_gallery_give_the_threshold_of_a_brute_force(max_fa):
    q, g, ql, gl = clustered(0)
    ql[:12] = 99  # twelve queries of a class the gallery lacks
    result = retrieval_metrics(q, g, ql, gl, normalize=False, block_size=9)
    held = held_out_classes(ql, gl, seed=0)
    assert len(held) == 0  # real unknowns exist: nothing is held out
    cal = calibrate(result, ql, held, max_fa)
    assert cal.out_of_gallery_source == "query list" and len(cal.out_of_gallery_scores) == 12
    check_against_brute_force(cal, brute_force_outcomes(q, g, ql, gl, np.ones(len(g), bool)), max_fa)


def test_held_out_classes_are_seeded_and_scored_against_the_rest_of_the_gallery():
    q, g, ql, gl = clustered(1)
    held = held_out_classes(ql, gl, seed=7)
    assert held.tolist() == held_out_classes(ql, gl, seed=7).tolist()
    assert held.tolist() != held_out_classes(ql, gl, seed=8).tolist()
    assert len(held) == round(0.2 * len(np.intersect1d(ql, gl)))
    keep = ~np.isin(gl, held)
    result = retrieval_metrics(q, g, ql, gl, normalize=False, block_size=11, subgallery=keep)
    cal = calibrate(result, ql, held, 0.1, seed=7)
    assert cal.out_of_gallery_source == "held-out classes" and cal.held_out_labels == held.tolist()
    assert len(cal.out_of_gallery_scores) == np.isin(ql, held).sum()
    check_against_brute_force(cal, brute_force_outcomes(q, g, ql, gl, keep), 0.1)
    assert cal.to_json()["held_out_labels"] == held.tolist() and cal.to_json()["seed"] == 7


def test_no_unknown_query_and_one_class_cannot_be_calibrated():
    q, g, _, _ = clustered(2)
    ql, gl = np.zeros(len(q), int), np.zeros(len(g), int)
    held = held_out_classes(ql, gl, seed=0)
    assert len(held) == 0
    cal = calibrate(retrieval_metrics(q, g, ql, gl), ql, held, 0.05)
    assert cal.threshold is None and "no class can be held out" in cal.reason
    assert cal.to_json() == {"computed": False, "reason": cal.reason}


def test_no_correct_top1_cannot_be_calibrated():
    # Every query's nearest gallery image is of another class.
    g = np.array([[1, 0], [0, 1], [-1, 0]], np.float32)
    q = np.array([[1, 0.1], [0.1, 1]], np.float32)
    result = retrieval_metrics(q, g, [1, 5], [0, 1, 2])
    cal = calibrate(result, [1, 5], np.zeros(0, np.int64), 0.05)
    assert cal.threshold is None and "no right answer to withhold" in cal.reason
