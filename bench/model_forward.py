"""CPU forward latency of every registered model at 224x224, batch 1 and 8, in eval mode.

    .venv/bin/python bench/model_forward.py                      # all models
    .venv/bin/python bench/model_forward.py --models PP-ShiTuV2_rec --repeats 10

For PP-ShiTuV2_rec it also times the re-parameterised (export) form, so the fusion speed-up is a
ratio measured in the same run. Weights are random: latency does not depend on them. Numbers are
medians over ``--repeats`` timed runs after one warm-up; on a shared machine, compare ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paddle  # noqa: E402

from paddlex_feat.models import build_model, list_models  # noqa: E402


def median_ms(models: list[paddle.nn.Layer], batch: int, repeats: int) -> list[float]:
    """Median wall time (ms) of one forward pass per model, timing the models in turn each round.

    Alternating the models spreads any load from other processes over all of them evenly.
    """
    x = paddle.randn([batch, 3, 224, 224])
    times: list[list[float]] = [[] for _ in models]
    with paddle.no_grad():
        for model in models:
            model(x)  # warm-up: kernel selection and allocations
        for _ in range(repeats):
            for model, bucket in zip(models, times):
                start = time.perf_counter()
                model(x).numpy()  # .numpy() waits for the result
                bucket.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) for t in times]


def main(argv: list[str] | None = None) -> int:
    """Print one row per model and batch size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list_models(), choices=list_models())
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    paddle.set_device("cpu")
    print(f"{'model':34s} {'batch':>5s} {'ms/batch':>10s} {'ms/image':>9s}  note")
    for name in args.models:
        model = build_model(name, 159)
        model.eval()
        fused = build_model(name, 159)
        fused.set_state_dict(model.state_dict())
        fused.eval()
        if not fused.re_parameterize():
            fused = None  # nothing to fuse (CLIP): time the model alone
        for batch in args.batches:
            if fused is None:
                (ms,) = median_ms([model], batch, args.repeats)
                print(f"{name:34s} {batch:5d} {ms:10.1f} {ms / batch:9.1f}", flush=True)
                continue
            ms, fused_ms = median_ms([model, fused], batch, args.repeats)
            print(f"{name:34s} {batch:5d} {ms:10.1f} {ms / batch:9.1f}", flush=True)
            print(
                f"{name + ' (fused)':34s} {batch:5d} {fused_ms:10.1f} {fused_ms / batch:9.1f}  "
                f"{ms / fused_ms:.2f}x faster than unfused",
                flush=True,
            )
        del model, fused
    return 0


if __name__ == "__main__":
    sys.exit(main())
