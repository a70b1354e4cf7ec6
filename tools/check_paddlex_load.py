"""Dev check: PaddleX 3.7.2 loads our exported inference folder and gives the same features as we do.

Run it with the side venv that holds PaddleX (never imported by paddlex_feat itself):

    .venv-ref/bin/python tools/check_paddlex_load.py --model-dir output/best_model/inference

Without ``--model-dir`` it first exports an (untrained) PP-ShiTuV2_rec with our venv into a temp
folder. Our features come from a separate process running ``.venv/bin/python``; PaddleX runs here,
with batch_size=1 (its batch_size>1 results carry the whole batch's matrix). Passes when every
image's cosine similarity is >= --min-cosine (0.9999); exit code 0 on success, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUR_PYTHON = ROOT / ".venv" / "bin" / "python"
DEFAULT_IMAGES = ROOT / "dataset" / "demo" / "images"

_EXPORT = """
import sys
from paddlex_feat.engine.export import export_inference
from paddlex_feat.models import build_model
import numpy as np, paddle
paddle.seed(0)
model = build_model(sys.argv[1], 10)
# untrained features of different images are nearly parallel; random BN statistics spread them out,
# so that a loader mixing images up could not pass
rng = np.random.default_rng(0)
for name, value in model.state_dict().items():
    if name.endswith("_mean"):
        value.set_value(rng.normal(0, 0.5, value.shape).astype("float32"))
    elif name.endswith("_variance"):
        value.set_value(rng.uniform(0.2, 2.0, value.shape).astype("float32"))
model.eval()
export_inference(model, sys.argv[1], sys.argv[2])
"""

_OURS = """
import json, sys
import numpy as np
from paddlex_feat.api import create_model
name, model_dir, images, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
model = create_model(name, model_dir=model_dir)
np.save(out, np.stack([r.feature for r in model.predict(images, batch_size=8)]))
"""


def main() -> int:
    """Compare PaddleX's and our features on the same folder; print a JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="inference folder to check (default: export one now)")
    parser.add_argument("--model-name", default="PP-ShiTuV2_rec")
    parser.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of images")
    parser.add_argument("--num-images", type=int, default=20)
    parser.add_argument("--min-cosine", type=float, default=0.9999)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pxf_check_"))
    model_dir = Path(args.model_dir) if args.model_dir else work / "inference"
    if not args.model_dir:
        subprocess.run(
            [str(OUR_PYTHON), "-c", _EXPORT, args.model_name, str(model_dir)], check=True, cwd=ROOT
        )
    images = sorted(str(p) for p in Path(args.images).rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    images = images[:: max(1, len(images) // args.num_images)][: args.num_images]  # spread over the folder

    out = work / "ours.npy"
    subprocess.run(
        [str(OUR_PYTHON), "-c", _OURS, args.model_name, str(model_dir), json.dumps(images), str(out)],
        check=True,
        cwd=ROOT,
    )
    ours = np.load(out)

    from paddlex import create_model  # the side venv's PaddleX

    model = create_model(model_name=args.model_name, model_dir=str(model_dir), device="cpu")
    theirs = np.stack([np.asarray(r["feature"]).reshape(-1) for r in model.predict(images, batch_size=1)])

    cosines = np.sum(ours * theirs, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    # features of different images must differ, or the check would pass on a constant model
    spread = float(np.max(np.abs(ours @ ours.T - np.eye(len(ours)))))
    summary = {
        "model_dir": str(model_dir),
        "images": len(images),
        "min_cosine": float(cosines.min()),
        "mean_cosine": float(cosines.mean()),
        "max_abs_diff": float(np.abs(ours - theirs).max()),
        "max_cosine_between_different_images": spread,
        "passed": bool(cosines.min() >= args.min_cosine and spread < 0.999),
    }
    print(json.dumps(summary, indent=2))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
