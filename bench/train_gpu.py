"""Exercise the GPU training paths: 1 GPU with AMP, and data-parallel on 2+ GPUs when present.

    python bench/train_gpu.py [--dataset dataset/demo] [--epochs 2]

Each run trains PP-ShiTuV2_rec from scratch at input 64 on the given dataset through the CLI
and prints images/s and recall@1 per epoch. Without a CUDA build of paddle and a GPU it says so
and exits 0, so it is safe to run anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paddlex_feat.cli import main as cli_main  # noqa: E402


def train(dataset: str, epochs: int, device: str, output: Path, *extra: str) -> dict:
    """One CLI training run; returns per-epoch figures and the wall time."""
    args = [
        "-c",
        str(ROOT / "configs/modules/image_feature/PP-ShiTuV2_rec.yaml"),
        "-o",
        "Global.mode=train",
        "-o",
        f"Global.device={device}",
        "-o",
        f"Global.dataset_dir={dataset}",
        "-o",
        f"Global.output={output}",
        "-o",
        "Train.pretrain_weight_path=null",
        "-o",
        "Train.num_classes=null",
        "-o",
        "Train.input_size=64",
        "-o",
        "Train.batch_size=64",
        "-o",
        "Train.learning_rate=0.04",
        "-o",
        "Train.warmup_steps=1",
        "-o",
        f"Train.epochs_iters={epochs}",
    ]
    for e in extra:
        args += ["-o", e]
    start = time.perf_counter()
    rc = cli_main(args)
    wall = time.perf_counter() - start
    epochs_rec = (
        [json.loads(x) for x in (output / "metrics.jsonl").read_text().splitlines()] if rc == 0 else []
    )
    epochs_rec = [r for r in epochs_rec if r["type"] == "epoch"]
    return {
        "rc": rc,
        "wall_s": round(wall, 1),
        "images_per_s": [round(r["images_per_s"], 1) for r in epochs_rec],
        "recall1": [round(r.get("metrics", {}).get("recall1", float("nan")), 4) for r in epochs_rec],
    }


def main() -> None:
    """Run the GPU cases that this machine supports."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT / "dataset" / "demo"))
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    import paddle

    gpus = paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0
    if gpus == 0:
        print("No CUDA GPU visible to paddle: nothing to run (install paddlepaddle-gpu on a GPU machine).")
        return
    cases = [("gpu:0", "fp32", ()), ("gpu:0", "amp", ("Train.amp=True",))]
    if gpus >= 2:
        cases.append((f"gpu:{','.join(map(str, range(gpus)))}", "amp", ("Train.amp=True",)))
    with tempfile.TemporaryDirectory() as tmp:
        for i, (device, precision, extra) in enumerate(cases):
            result = train(args.dataset, args.epochs, device, Path(tmp) / str(i), *extra)
            print(json.dumps({"device": device, "precision": precision, **result}))


if __name__ == "__main__":
    main()
