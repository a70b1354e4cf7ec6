"""Evaluate benchmarks: retrieval-metric time/peak memory, and feature-extraction throughput.

    python bench/evaluate.py metrics [--sizes 20000 100000] [--paddleclas-repo GITDIR]
    python bench/evaluate.py extract [--dataset-dir DIR] [--input-size 64]

``metrics`` runs each size in a fresh subprocess (so ru_maxrss is that case's peak) on random
512-d features drawn around class centres (about 5 gallery images per class). With
``--paddleclas-repo`` (a PaddleClas git dir, e.g. ``../PaddleClas/.git``), the 20k features are
also scored by PaddleClas 2.6.0's ``Recallk``/``mAP`` under the reference python (``--ref-python``,
default ``.venv-ref/bin/python``), in the same run.

``extract`` times extract_features (static graph) against the same model in eager mode on the
query+gallery lists of a dataset, checks their cosine agreement, and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from paths import bench_dataset, ref_python, require_ref_python

ROOT = Path(__file__).resolve().parents[1]
PADDLECLAS_260_COMMIT = "d6892e564cc754e760939e4848e45dc1b1a3c374"  # "Release PaddleClas release/2.6"


def make_features(n: int, seed: int, dim: int = 512) -> dict[str, np.ndarray]:
    """n queries and n gallery images, float32, ~5 gallery images per class, every query matched."""
    rng = np.random.default_rng(seed)
    num_classes = max(1, n // 5)
    centres = rng.standard_normal((num_classes, dim), dtype=np.float32)
    gallery_labels = np.arange(n) % num_classes
    query_labels = rng.integers(0, num_classes, n)
    data = {"query_labels": query_labels, "gallery_labels": gallery_labels}
    for name, labels in (("query", query_labels), ("gallery", gallery_labels)):
        feats = rng.standard_normal((n, dim), dtype=np.float32) * np.float32(2.2)
        feats += centres[labels]
        feats /= np.linalg.norm(feats, axis=1, keepdims=True)  # both sides get unit features
        data[name] = feats
    return data


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def metric_case(n: int, seed: int, save: str | None) -> None:
    """One size, in its own process: time retrieval_metrics, print one JSON line."""
    from paddlex_feat.metrics import retrieval_metrics

    data = make_features(n, seed)
    if save:
        np.savez(save, **data)
    before = rss_mb()
    start = time.perf_counter()
    result = retrieval_metrics(
        data["query"], data["gallery"], data["query_labels"], data["gallery_labels"], topk=[1, 5]
    )
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"n": n, "seconds": seconds, "rss_before_mb": before, "peak_rss_mb": rss_mb(), **result.metrics}
        )
    )


def run_json(cmd: list[str], env: dict | None = None) -> dict:
    """Run a command, return the JSON of its last stdout line."""
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def extract_ppcls(repo: str, dest: str) -> str:
    """Extract ppcls/ of PaddleClas 2.6.0 from a git dir into dest (a temp folder)."""
    archive = subprocess.run(
        ["git", "--git-dir", repo, "archive", PADDLECLAS_260_COMMIT, "ppcls"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", dest], input=archive.stdout, check=True)
    return dest


def bench_metrics(args: argparse.Namespace) -> None:
    """Time our metrics per size; score the first size with PaddleClas's code too."""
    with tempfile.TemporaryDirectory() as tmp:
        saved = os.path.join(tmp, "features.npz")
        for i, n in enumerate(args.sizes):
            cmd = [sys.executable, __file__, "metric-case", "--n", str(n), "--seed", str(args.seed)]
            if i == 0 and args.paddleclas_repo:
                cmd += ["--save", saved]
            ours = run_json(cmd)
            print(
                f"ours        {n:>6} x {n:<6}: {ours['seconds']:7.2f} s, peak RSS {ours['peak_rss_mb']:7.0f} MB "
                f"(features alone {ours['rss_before_mb']:.0f} MB), recall1 {ours['recall1']:.6f} "
                f"recall5 {ours['recall5']:.6f} mAP {ours['mAP']:.6f}"
            )
            if i == 0 and args.paddleclas_repo:
                ppcls_dir = extract_ppcls(args.paddleclas_repo, tmp)
                ref = run_json(
                    [str(require_ref_python(args.ref_python)), str(ROOT / "bench" / "paddleclas_metric_runner.py"), "--ppcls-dir", ppcls_dir,
                     "--features", saved]
                )  # fmt: skip
                m = ref["metrics"]
                print(
                    f"PaddleClas  {n:>6} x {n:<6}: {ref['seconds']:7.2f} s, peak RSS {ref['peak_rss_mb']:7.0f} MB, "
                    f"recall1 {m['recall1']:.6f} recall5 {m['recall5']:.6f} mAP {m['mAP']:.6f}"
                )
                diffs = {k: abs(ours[k] - m[k]) for k in ("recall1", "recall5", "mAP")}
                print(
                    f"  -> ours is {ref['seconds'] / ours['seconds']:.1f}x faster; "
                    f"max |difference| {max(diffs.values()):.2e} ({diffs})"
                )


def bench_extract(args: argparse.Namespace) -> None:
    """Each backend end to end as evaluate runs it: build once, then query + gallery; images/s, cosine."""
    import paddle

    from paddlex_feat.data.lists import read_list
    from paddlex_feat.engine.features import FeatureExtractor
    from paddlex_feat.models.registry import build_model

    lists = {name: read_list(args.dataset_dir, name) for name in ("query", "gallery")}
    total = sum(len(v) for v in lists.values())
    for entries in lists.values():  # page cache warm for every mode alike
        for e in entries:
            Path(args.dataset_dir, e.path).read_bytes()
    paddle.seed(0)
    model = build_model(args.model, args.num_classes)
    if args.weights:
        from paddlex_feat.models.weights import load_weights

        load_weights(model, args.weights)
    timings, features = {}, {}
    for mode in args.modes:
        start = time.perf_counter()
        extractor = FeatureExtractor(
            model, args.input_size, args.batch_size, args.num_workers, model_name=args.model, mode=mode
        )
        features[mode] = np.concatenate([extractor.extract(v, args.dataset_dir, k) for k, v in lists.items()])
        timings[mode] = time.perf_counter() - start
        print(f"{mode:>9}: {total} images in {timings[mode]:6.2f} s = {total / timings[mode]:7.1f} img/s "
              f"(vs PaddleClas's 59 img/s: {total / timings[mode] / 59:.1f}x)", flush=True)  # fmt: skip
    base = args.modes[0]
    for mode in args.modes[1:]:
        cosine = np.sum(features[base] * features[mode], axis=1)  # both sides are unit features
        print(f"{mode} vs {base}: {timings[base] / timings[mode]:.2f}x faster, min cosine {cosine.min():.7f}")


def main() -> None:
    """Dispatch the sub-benchmarks."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    m = sub.add_parser("metrics")
    m.add_argument("--sizes", type=int, nargs="+", default=[20000, 100000])
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--paddleclas-repo", help="PaddleClas git dir, e.g. ../PaddleClas/.git")
    m.add_argument("--ref-python", default=str(ref_python()), help="env REF_PYTHON")
    c = sub.add_parser("metric-case")
    c.add_argument("--n", type=int, required=True)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--save")
    e = sub.add_parser("extract")
    e.add_argument("--dataset-dir", default=str(bench_dataset()), help="env BENCH_DATASET")
    e.add_argument("--model", default="PP-ShiTuV2_rec")
    e.add_argument("--num-classes", type=int, default=1911)
    e.add_argument("--weights", help="a .pdparams checkpoint (default: random init)")
    e.add_argument("--input-size", type=int, default=64)
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--num-workers", type=int, default=2)
    e.add_argument("--modes", nargs="+", default=["eager", "static", "inference"])
    args = parser.parse_args()
    if args.what == "metrics":
        bench_metrics(args)
    elif args.what == "metric-case":
        metric_case(args.n, args.seed, args.save)
    else:
        bench_extract(args)


if __name__ == "__main__":
    main()
