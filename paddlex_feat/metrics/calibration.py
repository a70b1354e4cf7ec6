"""Open-set calibration: the top-1 score under which a query should be answered "unknown".

A deployed index answers a query with its top-1 gallery label when the top-1 score is >= the
threshold t, and "unknown" otherwise. Two errors trade off over t:
- false accept, FA(t): share of out-of-gallery queries (their class has no gallery image, so any
  answer is wrong) whose top-1 score is >= t;
- false reject, FR(t): share of in-gallery queries with a correct top-1 whose score is < t (a
  right answer withheld).
In-gallery queries whose top-1 is wrong get a wrong answer at any t under their score; that share
is reported beside the two (``wrong_answers``), as no threshold makes a wrong top-1 right.

Out-of-gallery queries come from the query list when some query's class has no gallery image.
When none has, a seeded share of the classes is held out of the gallery: their gallery images
are set aside and their queries become out-of-gallery. Everything is then scored against the
remaining gallery, from the same blocked pass as the metrics (``retrieval_metrics(subgallery=)``).

The recommended threshold is the lowest one whose FA <= ``max_false_accept`` (the lowest, since
FR only grows with t), or the equal-error point (FA closest to FR) when that is None. Candidates
are on a 0.0001 grid, so the threshold is a short number and its rates are exact for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .retrieval import RetrievalResult

HELD_OUT_SHARE = 0.2  # of the classes shared by queries and gallery, when none is out of gallery
GRID = 1e-4  # threshold resolution


@dataclass
class Calibration:
    """The calibration outcome; ``threshold`` is None when it could not be computed (``reason`` says why)."""

    threshold: float | None = None
    reason: str | None = None
    rule: str = ""  # "max_false_accept=0.05" or "equal_error"
    false_accept: float | None = None
    false_reject: float | None = None
    wrong_answers: float | None = None
    out_of_gallery_source: str = ""  # "query list" or "held-out classes"
    held_out_labels: list[int] = field(default_factory=list)
    seed: int | None = None
    # Top-1 scores by kind (the curve's inputs and the report's distribution plot).
    out_of_gallery_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    correct_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    wrong_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def to_json(self) -> dict:
        """The result-file view: the rates at the threshold and where the unknowns came from."""
        if self.threshold is None:
            return {"computed": False, "reason": self.reason}
        return {
            "computed": True,
            "rule": self.rule,
            "false_accept": round(self.false_accept, 4),
            "false_reject": round(self.false_reject, 4),
            "wrong_answers": round(self.wrong_answers, 4),
            "out_of_gallery_queries": int(len(self.out_of_gallery_scores)),
            "in_gallery_queries": int(len(self.correct_scores) + len(self.wrong_scores)),
            "out_of_gallery_source": self.out_of_gallery_source,
            "held_out_labels": self.held_out_labels,
            "seed": self.seed,
        }

    def curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(thresholds, FA, FR) over every grid point where a rate changes."""
        thresholds = _candidates(np.concatenate([self.out_of_gallery_scores, self.correct_scores]))
        fa, fr, _ = _rates(thresholds, self.out_of_gallery_scores, self.correct_scores, self.wrong_scores)
        return thresholds, fa, fr


def held_out_classes(
    query_labels: np.ndarray, gallery_labels: np.ndarray, seed: int, share: float = HELD_OUT_SHARE
) -> np.ndarray:
    """Classes to hold out of the gallery: none when some query is already out of gallery or when
    fewer than two classes are shared (holding one out would leave nothing to find)."""
    query_labels, gallery_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    if not np.isin(query_labels, gallery_labels).all():
        return np.zeros(0, dtype=np.int64)
    shared = np.intersect1d(query_labels, gallery_labels)
    if len(shared) < 2:
        return np.zeros(0, dtype=np.int64)
    count = min(len(shared) - 1, max(1, round(share * len(shared))))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(shared, size=count, replace=False)).astype(np.int64)


def calibrate(
    result: RetrievalResult,
    query_labels: np.ndarray,
    held_out: np.ndarray,
    max_false_accept: float | None,
    seed: int | None = None,
) -> Calibration:
    """FA/FR over the threshold from the metric pass's per-query scores, and the recommended threshold.

    ``held_out`` must be the classes whose gallery images ``result`` set aside as its subgallery.
    """
    query_labels = np.asarray(query_labels)
    if len(held_out):
        in_gallery = (result.num_positives > 0) & ~np.isin(query_labels, held_out)
        best_wrong = result.subgallery_top_wrong_score
        source = "held-out classes"
    else:
        in_gallery = result.num_positives > 0
        best_wrong = result.top_wrong_score
        source = "query list"
    best_right = np.where(in_gallery, result.best_positive_score, np.nan)
    top1 = np.fmax(best_right, best_wrong)  # NaN only where the query has no result at all
    correct = in_gallery & ~(best_wrong >= best_right)  # a tie goes to the wrong match
    cal = Calibration(
        out_of_gallery_source=source,
        held_out_labels=[int(x) for x in held_out],
        seed=seed if len(held_out) else None,
        out_of_gallery_scores=np.sort(top1[~in_gallery & np.isfinite(top1)]),
        correct_scores=np.sort(top1[correct]),
        wrong_scores=np.sort(top1[in_gallery & ~correct]),
    )
    if len(cal.out_of_gallery_scores) == 0:
        cal.reason = (
            "every query's class has a gallery image and fewer than two classes are shared, so no class "
            "can be held out to play the unknown; add queries of classes missing from the gallery"
        )
        return cal
    if len(cal.correct_scores) == 0:
        cal.reason = "no in-gallery query has a correct top-1 match, so there is no right answer to withhold"
        return cal
    thresholds, fa, fr = cal.curve()
    _, _, wrong = _rates(thresholds, cal.out_of_gallery_scores, cal.correct_scores, cal.wrong_scores)
    if max_false_accept is None:
        pick = int(np.lexsort((np.maximum(fa, fr), np.abs(fa - fr)))[0])
        cal.rule = "equal_error"
    else:
        pick = int(np.flatnonzero(fa <= max_false_accept + 1e-12)[0])  # the top candidate has FA 0
        cal.rule = f"max_false_accept={max_false_accept:g}"
    cal.threshold = float(thresholds[pick])
    cal.false_accept, cal.false_reject, cal.wrong_answers = (
        float(fa[pick]),
        float(fr[pick]),
        float(wrong[pick]),
    )
    return cal


def _candidates(scores: np.ndarray) -> np.ndarray:
    """Grid thresholds around each score: rates only change at scores, so these cover every change."""
    grid = np.round(scores.astype(np.float64) / GRID)
    steps = np.concatenate([grid - 1, grid, grid + 1])
    return np.unique(np.round(steps * GRID, 4))


def _rates(
    thresholds: np.ndarray, unknown: np.ndarray, correct: np.ndarray, wrong: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FA, FR and wrong-answer share at each threshold (a score >= t is answered); inputs sorted."""
    t = thresholds.astype(np.float32)  # compare in the scores' own precision
    fa = (len(unknown) - np.searchsorted(unknown, t, side="left")) / max(len(unknown), 1)
    fr = np.searchsorted(correct, t, side="left") / max(len(correct), 1)
    answered_wrong = len(wrong) - np.searchsorted(wrong, t, side="left")
    return fa, fr, answered_wrong / max(len(correct) + len(wrong), 1)
