"""Times PaddleClas's retrieval metrics (Recallk + mAP) on saved features; run by bench/evaluate.py.

Runs under the reference venv (``.venv-ref/bin/python``, from tools/make_ref_venv.sh) with ``--ppcls-dir`` pointing at an extracted
PaddleClas ``ppcls`` tree (never part of this repository). It repeats the block loop of
PaddleClas's ``retrieval_eval`` (no re-ranking, no unique ids): 64-query blocks, one metric call
per block, block results averaged by block size. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import defaultdict

import numpy as np


def main() -> None:
    """Load features, run PaddleClas's metrics block by block, print seconds and metrics."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ppcls-dir", required=True, help="folder that holds ppcls/")
    parser.add_argument("--features", required=True, help=".npz with query/gallery features+labels")
    parser.add_argument("--block-size", type=int, default=64, help="PaddleClas's sim_block_size")
    args = parser.parse_args()
    sys.path.insert(0, args.ppcls_dir)
    import paddle
    from ppcls.metric import build_metrics

    data = np.load(args.features)
    metric_func = build_metrics([{"Recallk": {"topk": [1, 5]}}, {"mAP": {}}])
    start = time.perf_counter()
    query = paddle.to_tensor(data["query"])
    gallery = paddle.to_tensor(data["gallery"])
    query_label = paddle.to_tensor(data["query_labels"].reshape(-1, 1))
    gallery_label = paddle.to_tensor(data["gallery_labels"].reshape(-1, 1))
    num_query = len(data["query"])
    metrics: dict[str, float] = defaultdict(float)
    for first in range(0, num_query, args.block_size):
        block = query[first : first + args.block_size]
        scores = paddle.matmul(block, gallery, transpose_y=True)
        block_metrics = metric_func(scores, query_label[first : first + args.block_size], gallery_label, None)
        for key, value in block_metrics.items():
            metrics[key] += float(value) * block.shape[0] / num_query
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "metrics": dict(metrics)}))


if __name__ == "__main__":
    main()
