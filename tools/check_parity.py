"""Dev check: our models against PaddleClas 2.6.0's RecModel (key names, shapes, features, sizes).

Run it with the side venv that holds paddleclas (installed --no-deps), never from CI:

    .venv-ref/bin/python tools/check_parity.py                 # all three models
    .venv-ref/bin/python tools/check_parity.py --write-fixtures  # also refresh tests/fixtures/

For each model it builds PaddleClas's RecModel from the GeneralRecognitionV2 Arch section and ours
with the same class count, compares ``state_dict()`` keys and shapes, copies PaddleClas's weights
(with randomised BatchNorm statistics, so that the copy matters) into ours, and compares the
eval-mode features (max abs difference). Exit status 0 only when every model passes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DIR = ROOT / "tests" / "fixtures"
TOLERANCE = 1e-4


def clip_arch(backbone: str, num_classes: int) -> dict:
    """The Arch section of PaddleClas's two CLIP recognition configs (they differ only in backbone)."""
    return {
        "Backbone": {"name": backbone, "pretrained": False, "return_embed": True, "return_mean_embed": True},
        "BackboneStopLayer": {"name": "flatten"},
        "Neck": {"name": "FC", "embedding_size": 512, "class_num": 512},
        "Head": {
            "name": "ArcMargin",
            "embedding_size": 512,
            "class_num": num_classes,
            "margin": 0.2,
            "scale": 30,
        },
    }


# PaddleClas GeneralRecognitionV2_*.yaml Arch sections (pretrained switched off, class count ours).
REF_ARCH = {
    "PP-ShiTuV2_rec": lambda n: {
        "Backbone": {"name": "PPLCNetV2_base_ShiTu", "pretrained": False, "class_expand": 512},
        "BackboneStopLayer": {"name": "flatten"},
        "Neck": {"name": "BNNeck", "num_features": 512},
        "Head": {"name": "FC", "embedding_size": 512, "class_num": n, "bias_attr": False},
    },
    "PP-ShiTuV2_rec_CLIP_vit_base": lambda n: clip_arch("CLIP_vit_base_patch16_224", n),
    "PP-ShiTuV2_rec_CLIP_vit_large": lambda n: clip_arch("CLIP_vit_large_patch14_224", n),
}


def import_paddleclas():
    """Import ppcls from the installed paddleclas wheel (its package root is paddleclas/)."""
    import paddleclas  # noqa: F401  (only to locate it)

    sys.path.insert(0, str(Path(paddleclas.__file__).parent))
    from ppcls.arch import RecModel
    from ppcls.utils import logger

    logger.init_logger()  # ppcls logs through a module global that is None until initialised
    return RecModel


def shapes_of(model) -> dict[str, list[int]]:
    """state_dict key -> shape, in state_dict order."""
    return {key: [int(d) for d in value.shape] for key, value in model.state_dict().items()}


def randomise_bn_stats(model, rng: np.random.Generator) -> None:
    """Give every BatchNorm non-trivial running stats so a forgotten buffer copy would show."""
    import paddle

    for name, value in model.state_dict().items():
        if name.endswith("._mean"):
            value.set_value(paddle.to_tensor(rng.normal(0, 0.1, value.shape).astype("float32")))
        elif name.endswith("._variance"):
            value.set_value(paddle.to_tensor(rng.uniform(0.5, 1.5, value.shape).astype("float32")))


def _fixture_json(fixture: dict) -> str:
    """JSON with one line per state_dict key, so fixture diffs read like key diffs."""
    head = {k: v for k, v in fixture.items() if k != "state_dict_shapes"}
    lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    shapes = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in fixture["state_dict_shapes"].items()]
    return "{\n" + "\n".join(lines) + '\n "state_dict_shapes": {\n' + ",\n".join(shapes) + "\n }\n}\n"


def check_model(name: str, num_classes: int, batch: int, write_fixtures: bool) -> dict:
    """Run every check for one model and return its figures."""
    import paddle

    from paddlex_feat.models import build_model

    ref_rec_model = import_paddleclas()
    paddle.seed(0)
    rng = np.random.default_rng(0)
    # Build PaddleClas's model and run it before building anything else: its foundation_vit reads
    # module globals in forward that the next build would overwrite.
    ref = ref_rec_model(**REF_ARCH[name](num_classes))
    randomise_bn_stats(ref, rng)
    ref.eval()
    x = paddle.to_tensor(rng.normal(0, 1, (batch, 3, 224, 224)).astype("float32"))
    label = paddle.to_tensor(rng.integers(0, num_classes, (batch, 1)).astype("int64"))
    with paddle.no_grad():
        ref_out = ref(x)
        ref_feat, ref_logits = ref_out["features"].numpy(), ref_out["logits"].numpy()
    ref_shapes = shapes_of(ref)
    ref_params = sum(int(p.numel()) for p in ref.parameters())
    ref_state = {k: v.numpy() for k, v in ref.state_dict().items()}

    ours = build_model(name, num_classes)
    our_shapes = shapes_of(ours)
    our_params = sum(int(p.numel()) for p in ours.parameters())
    missing = sorted(set(ref_shapes) - set(our_shapes))
    extra = sorted(set(our_shapes) - set(ref_shapes))
    shape_diff = sorted(k for k in set(ref_shapes) & set(our_shapes) if ref_shapes[k] != our_shapes[k])

    ours.set_state_dict({k: paddle.to_tensor(v) for k, v in ref_state.items()})
    ours.eval()
    t0 = time.perf_counter()
    with paddle.no_grad():
        our_feat = ours(x).numpy()
    forward_s = time.perf_counter() - t0
    max_abs = float(np.abs(our_feat - ref_feat).max())
    with paddle.no_grad():
        logits_max_abs = float(np.abs(ours.head(paddle.to_tensor(our_feat)).numpy() - ref_logits).max())
    result = {
        "model": name,
        "num_classes": num_classes,
        "keys": len(ref_shapes),
        "missing_in_ours": missing,
        "extra_in_ours": extra,
        "shape_mismatch": shape_diff,
        "params_ref": ref_params,
        "params_ours": our_params,
        "feature_shape": list(our_feat.shape),
        "feature_max_abs_diff": max_abs,
        "feature_ref_abs_max": float(np.abs(ref_feat).max()),
        "eval_logits_max_abs_diff": logits_max_abs,
        "our_forward_s": round(forward_s, 3),
    }
    if name != "PP-ShiTuV2_rec":
        # Train-mode ArcMargin logits with labels (no dropout in these models, so deterministic).
        ref.train()
        ours.train()
        with paddle.no_grad():
            ref_train = ref(x, label)["logits"].numpy()
            our_train = ours.logits(ours(x), label).numpy()
        result["train_logits_max_abs_diff"] = float(np.abs(our_train - ref_train).max())
        ref.eval()
        ours.eval()
    rep_blocks = [layer for layer in ref.sublayers() if hasattr(layer, "re_parameterize")]
    if rep_blocks:
        # Compare the fused (export) graphs too: PaddleClas's fusion against ours.
        for layer in rep_blocks:
            layer.re_parameterize()
        result["fused_blocks"] = ours.re_parameterize()
        with paddle.no_grad():
            result["fused_max_abs_diff"] = float(np.abs(ours(x).numpy() - ref(x)["features"].numpy()).max())
            result["fused_vs_unfused_ref"] = float(np.abs(ref(x)["features"].numpy() - ref_feat).max())
    ok = not (missing or extra or shape_diff) and max_abs < TOLERANCE and ref_params == our_params
    for key in ("eval_logits_max_abs_diff", "train_logits_max_abs_diff", "fused_max_abs_diff"):
        ok = ok and result.get(key, 0.0) < TOLERANCE
    result["ok"] = ok
    if write_fixtures:
        fixture = {
            "source": "paddleclas 2.6.0 ppcls.arch.RecModel (GeneralRecognitionV2 Arch), written by tools/check_parity.py",
            "model": name,
            "num_classes": num_classes,
            "num_params": ref_params,
            "state_dict_shapes": ref_shapes,
        }
        FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
        path = FIXTURE_DIR / f"{name}_state_dict_shapes.json"
        path.write_text(_fixture_json(fixture), encoding="utf-8")
        result["fixture"] = str(path.relative_to(ROOT))
    return result


def main(argv: list[str] | None = None) -> int:
    """Check the chosen models and print one JSON line each; exit 1 on any failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(REF_ARCH), choices=list(REF_ARCH))
    parser.add_argument("--num-classes", type=int, default=159, help="159 = PaddleX's shipped config")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--write-fixtures", action="store_true", help="refresh tests/fixtures/*.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    all_ok = True
    for name in args.models:
        result = check_model(name, args.num_classes, args.batch, args.write_fixtures)
        all_ok &= result["ok"]
        print(json.dumps(result), flush=True)
    print("PARITY OK" if all_ok else "PARITY FAILED")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
