"""The evaluate report: what went wrong, where, and the open-set threshold, for people to look at.

Writes, beside ``evaluate_result.json``:
- ``evaluate_report.html``: one self-contained file (thumbnails and plots as data URIs, inline
  CSS and a few lines of inline script, nothing fetched) with the summary, the worst queries, the
  most confused class pairs, a sortable per-class recall@1 table and the score plots;
- ``evaluate_worst_queries.png``: the worst-queries grid, to paste into chats and tickets;
- ``evaluate_calibration.png``: false accept / false reject over the threshold.
Thumbnails are made only for what is shown, so size and build time do not grow with the gallery;
an image that cannot be read becomes a placeholder tile and is counted.
Plots use matplotlib's Agg canvas directly (no pyplot, so no global backend state).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..data.lists import ListEntry
from ..data.visualize import render_text
from ..inference.backends.onnx_cache import file_sha256
from ..metrics import Calibration, RetrievalResult, worst_queries
from ..utils.image import read_bgr
from ..utils.io import atomic_write_bytes, atomic_write_text
from ..utils.logger import logger

REPORT_FILE = "evaluate_report.html"
GRID_FILE = "evaluate_worst_queries.png"
CURVE_FILE = "evaluate_calibration.png"
NUM_WORST_HTML = 20
NUM_WORST_PNG = 8
NUM_PAIRS = 10
MAX_CLASS_ROWS = 1000  # per-class table rows (lowest recall first); keeps huge label sets small
THUMB_PX = 112
COLOR_RIGHT, COLOR_WRONG, COLOR_UNKNOWN = "#1a9850", "#d73027", "#4575b4"


def report_top(topk: Sequence[int]) -> int:
    """How many results per query the report shows: the largest k, at least 5, at most 10."""
    return min(10, max(5, *topk))


@dataclass
class ReportInputs:
    """Everything the report shows: the metric pass, the calibration and what was evaluated."""

    result: RetrievalResult
    calibration: Calibration
    query: Sequence[ListEntry]
    gallery: Sequence[ListEntry]
    dataset_dir: str
    model_name: str
    weight_path: str


class Thumbnails:
    """Square JPEG thumbnails of dataset images, read once each; unreadable ones become a tile."""

    def __init__(self, dataset_dir: str) -> None:
        self.root = Path(dataset_dir)
        self.unreadable: dict[str, str] = {}  # path -> why
        self._rgb: dict[str, np.ndarray] = {}

    def rgb(self, path: str) -> np.ndarray:
        """The thumbnail as an RGB array (THUMB_PX square, letterboxed on white)."""
        if path not in self._rgb:
            image, why = read_bgr(self.root / path)
            if image is None:
                self.unreadable[path] = why or "unreadable"
                self._rgb[path] = _placeholder_tile()
            else:
                self._rgb[path] = _letterbox(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return self._rgb[path]

    def data_uri(self, path: str) -> str:
        """The thumbnail as a JPEG data URI."""
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(self.rgb(path), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80]
        )
        return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def write_calibration(calibration: Calibration, output: Path) -> dict:
    """Log the recommended threshold (or why there is none), write the FA/FR curve PNG; returns result-file fields."""
    fields = {"recommended_threshold": calibration.threshold, "calibration": calibration.to_json()}
    if calibration.threshold is None:
        logger.warning(f"The open-set threshold cannot be computed: {calibration.reason}.")
        return fields
    cal = calibration
    held = (
        f" (held-out classes, seed {cal.seed}: {_short_list(cal.held_out_labels)})"
        if cal.held_out_labels
        else ""
    )
    logger.info(
        f"Recommended Index.score_threshold {cal.threshold:.4f} ({cal.rule}): false accept {cal.false_accept:.3f} "
        f"of {len(cal.out_of_gallery_scores)} unknown queries{held}, false reject {cal.false_reject:.3f}, "
        f"wrong answers {cal.wrong_answers:.3f}"
    )
    atomic_write_bytes(output / CURVE_FILE, _png(_calibration_figure(cal)))
    fields["calibration"]["curve_png"] = CURVE_FILE
    return fields


def write_report(inputs: ReportInputs, output: Path) -> dict:
    """Write the HTML report and the worst-queries PNG (after ``write_calibration``); returns result-file fields."""
    thumbs = Thumbnails(inputs.dataset_dir)
    worst = worst_queries(inputs.result, NUM_WORST_HTML)
    atomic_write_bytes(output / GRID_FILE, _worst_grid_png(inputs, worst[:NUM_WORST_PNG], thumbs))
    page = _page(inputs, worst, thumbs, output)
    atomic_write_text(output / REPORT_FILE, page)
    if thumbs.unreadable:
        listing = ", ".join(f"{p} ({why})" for p, why in list(thumbs.unreadable.items())[:5])
        logger.warning(
            f"{len(thumbs.unreadable)} image(s) could not be read for the report's thumbnails and show as "
            f"placeholder tiles: {listing}{' ...' if len(thumbs.unreadable) > 5 else ''}"
        )
    logger.info(f"Wrote {output / REPORT_FILE} ({len(page) / 1e6:.1f} MB) and {output / GRID_FILE}")
    return {
        "report": REPORT_FILE,
        "worst_queries_png": GRID_FILE,
        "unreadable_thumbnails": len(thumbs.unreadable),
    }


# ---- the page


def _page(inputs: ReportInputs, worst: list[int], thumbs: Thumbnails, output: Path) -> str:
    sections = [
        _summary(inputs),
        _worst_section(inputs, worst, thumbs),
        _confused_pairs_section(inputs, thumbs),
        _plots_section(inputs, output),
        _per_class_section(inputs),
    ]
    notes = ""
    if thumbs.unreadable:
        notes = (
            f'<p class="warn">{len(thumbs.unreadable)} image(s) could not be read and show as grey '
            f"placeholder tiles, e.g. {html.escape(next(iter(thumbs.unreadable)))}.</p>"
        )
    title = f"Evaluation of {html.escape(inputs.model_name)}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body><h1>{title}</h1>{notes}{''.join(sections)}"
        f"<script>{_SORT_SCRIPT}</script></body></html>\n"
    )


def _summary(inputs: ReportInputs) -> str:
    r, cal = inputs.result, inputs.calibration
    metric_rows = "".join(
        f"<tr><th>{html.escape(_metric_name(k))}</th><td>{v:.4f}</td></tr>" for k, v in r.metrics.items()
    )
    facts = [
        ("model", inputs.model_name),
        ("weights", inputs.weight_path),
        ("weights sha256", file_sha256(Path(inputs.weight_path))),
        ("dataset", inputs.dataset_dir),
        ("queries", f"{r.num_queries} ({r.num_queries - r.num_unmatched} with a same-class gallery image)"),
        ("gallery images", str(len(inputs.gallery))),
        ("generated", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    fact_rows = "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    return (
        '<section><h2>Summary</h2><div class="cols">'
        f'<table class="kv">{metric_rows}</table><table class="kv">{fact_rows}</table>'
        f"</div>{_threshold_box(cal)}</section>"
    )


def _threshold_box(cal: Calibration) -> str:
    if cal.threshold is None:
        return f'<p class="warn">No "unknown" threshold: {html.escape(cal.reason or "")}.</p>'
    source = (
        f"classes held out of the gallery (seed {cal.seed}): {_short_list(cal.held_out_labels)}"
        if cal.held_out_labels
        else "queries whose class has no gallery image"
    )
    return (
        f'<p class="threshold">Recommended <code>Index.score_threshold</code>: <b>{cal.threshold:.4f}</b> '
        f"({html.escape(cal.rule.replace('_', ' '))}). At it, {cal.false_accept:.1%} of unknown queries still get "
        f"an answer (false accept), {cal.false_reject:.1%} of right answers are withheld (false reject) and "
        f"{cal.wrong_answers:.1%} of known queries get a wrong answer. Unknown queries: "
        f"{len(cal.out_of_gallery_scores)}, from {html.escape(source)}.</p>"
    )


def _worst_section(inputs: ReportInputs, worst: list[int], thumbs: Thumbnails) -> str:
    r = inputs.result
    failing = int((r.first_hit_rank > 0).sum())
    if not worst:
        return "<section><h2>Worst queries</h2><p>Every query's top-1 match is correct.</p></section>"
    rows = []
    for i in worst:
        q = inputs.query[i]
        cells = [_tile(thumbs, q.path, f"query · class {q.label}", "query")]
        for j, score in zip(r.top_index[i], r.top_score[i]):
            if j < 0:
                break
            g = inputs.gallery[j]
            right = g.label == q.label
            mark = "✓" if right else "✗"
            cells.append(
                _tile(thumbs, g.path, f"{mark} class {g.label} · {score:.3f}", "right" if right else "wrong")
            )
        rank = int(r.first_hit_rank[i]) + 1
        best = inputs.gallery[r.best_positive_index[i]]
        first_right = (
            _tile(thumbs, best.path, f"first ✓ at rank {rank}\nscore {r.best_positive_score[i]:.3f}", "right")
            if rank > len(cells) - 1
            else f'<div class="rank">first ✓ at rank {rank}</div>'
        )
        rows.append(f'<div class="row">{"".join(cells)}<div class="sep"></div>{first_right}</div>')
    return (
        f"<section><h2>Worst queries</h2><p>{len(worst)} of the {failing} queries whose top-1 answer is wrong, "
        "the furthest-down first correct match first. Each row: the query, then what the model returned "
        "(✓ same class, ✗ another class, with the score).</p>" + "".join(rows) + "</section>"
    )


def _confused_pairs_section(inputs: ReportInputs, thumbs: Thumbnails) -> str:
    pairs = _confused_pairs(inputs)
    if not pairs:
        return ""
    cards = []
    for (a, b), (count, i) in pairs:
        q, g = inputs.query[i], inputs.gallery[inputs.result.top_wrong_index[i]]
        cards.append(
            f'<div class="pair"><div class="pairhead">{a} ↔ {b} · {count} quer{"y" if count == 1 else "ies"}</div>'
            f"{_tile(thumbs, q.path, f'query · class {q.label}', 'query')}"
            f"{_tile(thumbs, g.path, f'answer · class {g.label}', 'wrong')}</div>"
        )
    # Cards that wrap, several per line: as table rows they made a long, narrow column.
    return (
        "<section><h2>Most confused classes</h2><p>Class pairs most often mistaken for each other "
        "(a query of one answered with the other at top-1), with one example each.</p>"
        f'<div class="pairs">{"".join(cards)}</div></section>'
    )


def _confused_pairs(inputs: ReportInputs) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """((class a, class b), (count, example query)) for the most frequent wrong top-1 pairs."""
    r = inputs.result
    counts: Counter = Counter()
    example: dict[tuple[int, int], int] = {}
    for i in np.flatnonzero(r.first_hit_rank > 0):
        a, b = inputs.query[i].label, inputs.gallery[r.top_wrong_index[i]].label
        key = (min(a, b), max(a, b))
        counts[key] += 1
        if key not in example or r.top_wrong_score[i] > r.top_wrong_score[example[key]]:
            example[key] = int(i)
    return [(k, (n, example[k])) for k, n in counts.most_common(NUM_PAIRS)]


def _per_class_section(inputs: ReportInputs) -> str:
    r = inputs.result
    labels = np.array([e.label for e in inputs.query])
    matched = r.num_positives > 0
    classes, inverse = np.unique(labels[matched], return_inverse=True)
    if len(classes) == 0:
        return ""
    queries = np.bincount(inverse)
    recall1 = np.bincount(inverse, weights=(r.first_hit_rank[matched] == 0)) / queries
    ap = r.average_precision[matched]
    mean_ap = np.bincount(inverse, weights=np.nan_to_num(ap)) / queries
    order = np.lexsort((classes, recall1))[:MAX_CLASS_ROWS]
    rows = "".join(
        f"<tr><td>{classes[c]}</td><td>{queries[c]}</td><td>{recall1[c]:.3f}</td><td>{mean_ap[c]:.3f}</td></tr>"
        for c in order
    )
    shown = f"the {len(order)} with the lowest recall@1 of " if len(order) < len(classes) else ""
    return (
        f"<section><h2>Per-class recall@1</h2><p>{shown}{len(classes)} classes; click a column to sort.</p>"
        '<table class="sortable"><thead><tr><th>class</th><th>queries</th><th>recall@1</th><th>mAP</th></tr>'
        f"</thead><tbody>{rows}</tbody></table></section>"
    )


def _plots_section(inputs: ReportInputs, output: Path) -> str:
    images = [_png_uri(_png(_score_figure(inputs)))]
    if inputs.calibration.threshold is not None:  # write_calibration has drawn its curve already
        images.append(_png_uri((output / CURVE_FILE).read_bytes()))
    tags = "".join(f'<img class="plot" src="{uri}" alt="plot">' for uri in images)
    return f'<section><h2>Scores</h2><div class="cols">{tags}</div></section>'


def _tile(thumbs: Thumbnails, path: str, caption: str, kind: str) -> str:
    return (
        f'<figure class="{kind}" title="{html.escape(path)}"><img src="{thumbs.data_uri(path)}" alt="">'
        f"<figcaption>{html.escape(caption).replace(chr(10), '<br>')}</figcaption></figure>"
    )


# ---- figures


def _score_figure(inputs: ReportInputs) -> Figure:
    """Histograms of top-1 scores: correct, wrong (known queries) and unknown queries."""
    r, cal = inputs.result, inputs.calibration
    matched = r.num_positives > 0
    top1 = np.fmax(r.best_positive_score, r.top_wrong_score)
    groups = [
        (top1[matched & (r.first_hit_rank == 0)], "correct top-1", COLOR_RIGHT),
        (top1[matched & (r.first_hit_rank > 0)], "wrong top-1", COLOR_WRONG),
        (
            cal.out_of_gallery_scores,
            "unknown (held-out class)" if cal.held_out_labels else "unknown (class not in gallery)",
            COLOR_UNKNOWN,
        ),
    ]
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    finite = np.concatenate([g[0] for g in groups if len(g[0])])
    bins = np.linspace(float(finite.min()), float(finite.max()) + 1e-6, 31)
    for scores, name, color in groups:
        if len(scores):
            # Each group as a share of itself: the groups' sizes differ ~10x on a weak model, and
            # counts hid the small one. Filled steps for the area, an outline where they overlap.
            weights = np.full(len(scores), 1.0 / len(scores))
            ax.hist(scores, bins=bins, weights=weights, histtype="stepfilled", alpha=0.25, color=color)
            ax.hist(scores, bins=bins, weights=weights, histtype="step", linewidth=1.5, color=color,
                    label=f"{name} ({len(scores)})")  # fmt: skip
    if cal.threshold is not None:
        ax.axvline(
            cal.threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {cal.threshold:.4f}"
        )
    ax.set_xlabel("top-1 score (cosine similarity)")
    ax.set_ylabel("share of the group's queries")
    ax.set_title("Top-1 score by outcome")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


def _calibration_figure(cal: Calibration) -> Figure:
    thresholds, fa, fr = cal.curve()
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    ax.step(thresholds, fa, where="post", color=COLOR_UNKNOWN, label="false accept (unknown answered)")
    ax.step(thresholds, fr, where="post", color=COLOR_RIGHT, label="false reject (right answer withheld)")
    ax.axvline(cal.threshold, color="black", linestyle="--", linewidth=1)
    ax.plot([cal.threshold], [cal.false_accept], "o", color=COLOR_UNKNOWN)
    ax.plot([cal.threshold], [cal.false_reject], "o", color=COLOR_RIGHT)
    # On the side of the line with more room: near the top score the box was cut off at the right.
    right_half = cal.threshold > (thresholds[0] + thresholds[-1]) / 2
    ax.annotate(
        f"threshold {cal.threshold:.4f}\nFA {cal.false_accept:.1%}, FR {cal.false_reject:.1%}",
        (cal.threshold, 1.0), xytext=(-6 if right_half else 6, -2), textcoords="offset points", fontsize=8,
        va="top", ha="right" if right_half else "left",
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#999"},
    )  # fmt: skip
    ax.set_xlabel("score threshold (answer when top-1 score >= threshold)")
    ax.set_ylabel("share of queries")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Open-set calibration ({cal.rule.replace('_', ' ')})")
    # Below the axes: inside, the legend always covers one of the two curves.
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    fig.tight_layout()
    return fig


def _worst_grid_png(inputs: ReportInputs, worst: list[int], thumbs: Thumbnails) -> bytes:
    """The worst queries as one picture: query, its first results, and the first correct match.

    Composed in numpy with the bundled font (one matplotlib axes per tile took ~100x longer).
    """
    r = inputs.result
    rows = [_title_strip(f"{inputs.model_name}: worst queries  (✓ same class, ✗ another class)")]
    if not worst:
        rows.append(_title_strip("Every query's top-1 match is correct."))
    for i in worst:
        q = inputs.query[i]
        cells = [_cell(thumbs.rgb(q.path), f"query · {q.label}", _RGB["query"])]
        for j, score in zip(r.top_index[i], r.top_score[i]):
            if j >= 0:
                g = inputs.gallery[j]
                kind = "right" if g.label == q.label else "wrong"
                cells.append(_cell(thumbs.rgb(g.path), f"{_MARK[kind]} {g.label} · {score:.2f}", _RGB[kind]))
        cells += [_blank_cell()] * (r.top_index.shape[1] + 1 - len(cells))
        best = inputs.gallery[r.best_positive_index[i]]
        rank = int(r.first_hit_rank[i]) + 1
        cells += [_blank_cell(8), _cell(thumbs.rgb(best.path), f"first ✓ rank {rank}", _RGB["right"])]
        rows.append(np.concatenate(cells, axis=1))
    width = max(row.shape[1] for row in rows)
    grid = np.concatenate(
        [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    )
    ok, buf = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return buf.tobytes()


CELL_PAD, CAPTION_PX = 6, 13
_RGB = {"query": (34, 34, 34), "right": (26, 152, 80), "wrong": (215, 48, 39)}
_MARK = {"right": "✓", "wrong": "✗"}


def _cell(rgb: np.ndarray, caption: str, color: tuple[int, int, int]) -> np.ndarray:
    """A framed thumbnail with its caption underneath, on white."""
    border = 3
    size = THUMB_PX + 2 * border
    cell = np.full((size + CAPTION_PX + 8 + 2 * CELL_PAD, size + 2 * CELL_PAD, 3), 255, dtype=np.uint8)
    cell[CELL_PAD : CELL_PAD + size, CELL_PAD : CELL_PAD + size] = color
    cell[
        CELL_PAD + border : CELL_PAD + border + THUMB_PX, CELL_PAD + border : CELL_PAD + border + THUMB_PX
    ] = rgb
    _draw_text(cell, caption, CELL_PAD + size + 4, color, CAPTION_PX)
    return cell


def _blank_cell(width: int | None = None) -> np.ndarray:
    like = _cell(np.zeros((THUMB_PX, THUMB_PX, 3), np.uint8), "", (255, 255, 255))
    return np.full((like.shape[0], width or like.shape[1], 3), 255, dtype=np.uint8)


def _title_strip(text: str) -> np.ndarray:
    strip = np.full((34, render_text(text, 16).shape[1] + 2 * CELL_PAD, 3), 255, dtype=np.uint8)
    _draw_text(strip, text, 8, (0, 0, 0), 16, center=False)
    return strip


def _draw_text(image: np.ndarray, text: str, top: int, color, size_px: int, center: bool = True) -> None:
    """Blend ``text`` (the bundled font) onto ``image`` at row ``top``, centred or at the left pad."""
    if not text:
        return
    glyphs = render_text(text, size_px)[:, : image.shape[1] - 2]
    height, width = min(glyphs.shape[0], image.shape[0] - top), glyphs.shape[1]
    left = (image.shape[1] - width) // 2 if center else CELL_PAD
    alpha = glyphs[:height].astype(np.float32)[..., None] / 255.0
    region = image[top : top + height, left : left + width].astype(np.float32)
    image[top : top + height, left : left + width] = (region * (1 - alpha) + np.array(color) * alpha).astype(
        np.uint8
    )


# ---- helpers


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _letterbox(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = THUMB_PX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tile = np.full((THUMB_PX, THUMB_PX, 3), 255, dtype=np.uint8)
    top, left = (THUMB_PX - size[1]) // 2, (THUMB_PX - size[0]) // 2
    tile[top : top + size[1], left : left + size[0]] = small
    return tile


def _placeholder_tile() -> np.ndarray:
    """A grey tile with a cross: the image could not be read."""
    tile = np.full((THUMB_PX, THUMB_PX, 3), 200, dtype=np.uint8)
    cv2.line(tile, (8, 8), (THUMB_PX - 9, THUMB_PX - 9), (120, 120, 120), 2)
    cv2.line(tile, (THUMB_PX - 9, 8), (8, THUMB_PX - 9), (120, 120, 120), 2)
    return tile


def _metric_name(key: str) -> str:
    for prefix in ("recall", "precision"):
        if key.startswith(prefix) and key[len(prefix) :].isdigit():
            return f"{prefix}@{key[len(prefix) :]}"
    return key


def _short_list(values: list[int], limit: int = 20) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse}td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #eee}
.kv th{font-weight:600;color:#555}.cols{display:flex;gap:32px;flex-wrap:wrap;align-items:flex-start}
.row{display:flex;width:fit-content;gap:6px;align-items:flex-start;margin:8px 0;padding:6px;background:#fafafa}
.pairs{display:flex;flex-wrap:wrap;gap:12px}.pair{display:flex;flex-wrap:wrap;gap:6px;width:250px;padding:6px;background:#fafafa}
.pairhead{width:100%;font-weight:600}
figure{margin:0;width:116px;text-align:center}figure img{width:112px;height:112px;border:2px solid #ccc}
figcaption{font-size:11px;line-height:1.2}figure.right img{border-color:#1a9850}
figure.wrong img{border-color:#d73027}figure.query img{border-color:#222}
figure.right figcaption{color:#1a9850}figure.wrong figcaption{color:#d73027}
.sep{width:1px;align-self:stretch;background:#ccc;margin:0 6px}.rank{font-size:12px;color:#1a9850;width:116px}
.warn{background:#fff3cd;padding:8px}.threshold{background:#e8f4ea;padding:8px}
.sortable th{cursor:pointer;background:#f3f3f3}.sortable th:after{content:" ⇅";color:#aaa}
img.plot{max-width:640px}
"""

# Sort a table by the clicked column (numbers numerically); a second click reverses.
_SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
    var dir = th.dataset.dir === "asc" ? -1 : 1; th.dataset.dir = dir === 1 ? "asc" : "desc";
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent, nx = parseFloat(x), ny = parseFloat(y);
      return dir * (isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""
