"""Dev check: index folders travel both ways between paddlex_feat and PaddleX 3.7.2's faiss indexer.

Run it with the side venv that holds PaddleX (never imported by paddlex_feat itself):

    .venv-ref/bin/python tools/check_paddlex_index.py --our-python .venv/bin/python   # tools/make_ref_venv.sh

1. Our venv exports a PP-ShiTuV2_rec (random weights, spread BN statistics, as check_paddlex_load.py)
   and, for each index type, builds an index of the demo gallery with labels that hold spaces, then
   searches the demo queries (top-1 labels).
2. PaddleX opens each of our folders with ``FaissIndexer`` (what its PP-ShiTuV2 pipeline does with
   ``index=``), embeds the same queries with its own predictor, and must give the same top-1 labels.
3. PaddleX builds its own indexes (``FaissBuilder.build``, Flat / HNSW32 / IVF) and saves them; our
   venv loads each folder, searches the same queries, and must give the labels PaddleX gives.
Prints a JSON summary; exit code 0 when every comparison matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_paddlex_load import _EXPORT  # noqa: E402 - the same export with spread BN statistics

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "dataset" / "demo"

_OURS = """
import json, sys
from paddlex_feat import build_index, create_model, load_index
model_dir, work, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
model = create_model("PP-ShiTuV2_rec", model_dir=model_dir, batch_size=16)
out = {}
for kind in spec["build"]:
    index = build_index(model, (spec["gallery"], spec["labels"]), index_type=kind)
    index.save(f"{work}/ours_{kind}")
    out[f"ours_{kind}"] = [r["labels"][0] for r in index.search(spec["queries"], top_k=1)]
for name in spec["load"]:
    index = load_index(f"{work}/{name}", model=model)
    out[name] = {"labels": [r["labels"][0] for r in index.search(spec["queries"], top_k=1)],
                 "index_type": index.meta.index_type, "count": len(index)}
print(json.dumps(out))
"""


def demo_gallery() -> tuple[list[str], list[str], list[str]]:
    """Gallery paths, labels with spaces (emoji short names), and query paths of dataset/demo."""
    names = {}
    for line in (DEMO / "classes.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        cols = line.split("\t")
        names[cols[0]] = f"{cols[3].replace('_', ' ')} ({cols[4]})"
    gallery, labels = [], []
    for line in (DEMO / "gallery.txt").read_text().splitlines():
        path, label = line.split()
        gallery.append(str(DEMO / path))
        labels.append(names.get(label, f"class {label}"))
    queries = [str(DEMO / line.split()[0]) for line in (DEMO / "query.txt").read_text().splitlines()]
    return gallery, labels, queries


def our_env() -> dict:
    """The environment for our venv: without the PYTHONPATH that may point at the side venv's extras."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run_ours(python: str, model_dir: Path, work: Path, spec: dict) -> dict:
    done = subprocess.run(
        [python, "-c", _OURS, str(model_dir), str(work), json.dumps(spec)],
        cwd=ROOT, capture_output=True, text=True, env=our_env(),
    )  # fmt: skip
    if done.returncode:
        sys.exit(f"our venv failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    """Build, save and search in both directions; print a JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--our-python", default=str(ROOT / ".venv" / "bin" / "python"))
    parser.add_argument("--types", nargs="+", default=["Flat", "HNSW", "IVF"])
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pxf_index_check_"))
    model_dir = work / "inference"
    subprocess.run(
        [args.our_python, "-c", _EXPORT, "PP-ShiTuV2_rec", str(model_dir)],
        check=True,
        cwd=ROOT,
        env=our_env(),
    )
    gallery, labels, queries = demo_gallery()

    # 1. ours builds and searches
    ours = run_ours(args.our_python, model_dir, work, {"build": args.types, "load": [], "gallery": gallery,
                                                        "labels": labels, "queries": queries})  # fmt: skip

    # 2. PaddleX searches our folders with its own features
    from paddlex import create_model
    from paddlex.inference.pipelines.components.faisser import FaissBuilder, FaissIndexer

    model = create_model(model_name="PP-ShiTuV2_rec", model_dir=str(model_dir), device="cpu")
    # one row each (PaddleX's result may carry the feature as [1, 512])
    features = np.stack(
        [np.asarray(r["feature"], dtype=np.float32).reshape(-1) for r in model.predict(queries, batch_size=1)]
    )
    summary: dict = {"queries": len(queries), "gallery": len(gallery), "checks": []}
    for kind in args.types:
        theirs = [p["label"][0] for p in FaissIndexer(str(work / f"ours_{kind}"))(features, 0.0, None, 1)]
        same = sum(a == b for a, b in zip(theirs, ours[f"ours_{kind}"]))
        summary["checks"].append({"built_by": "paddlex_feat", "index_type": kind, "searched_by": "PaddleX",
                                  "same_top1": same, "of": len(queries)})  # fmt: skip

    print(json.dumps(summary["checks"]), flush=True)

    # 3. PaddleX builds; ours loads and searches
    px_types = {"Flat": "Flat", "HNSW": "HNSW32", "IVF": "IVF"}

    def predict(imgs: list[str]) -> list[dict]:  # what PaddleX's pipeline hands FaissBuilder: one row each
        return [{"feature": np.asarray(r["feature"]).reshape(-1)} for r in model.predict(imgs, batch_size=1)]

    px_answers = {}
    for kind in args.types:
        data = FaissBuilder.build(gallery, labels, predict, metric_type="IP", index_type=px_types[kind])
        data.save(str(work / f"paddlex_{kind}"))
        px_answers[kind] = [p["label"][0] for p in FaissIndexer(data)(features, 0.0, None, 1)]
    loaded = run_ours(args.our_python, model_dir, work, {"build": [], "load": [f"paddlex_{k}" for k in args.types],
                                                          "gallery": [], "labels": [], "queries": queries})  # fmt: skip
    for kind in args.types:
        got = loaded[f"paddlex_{kind}"]
        same = sum(a == b for a, b in zip(got["labels"], px_answers[kind]))
        summary["checks"].append({"built_by": "PaddleX", "index_type": px_types[kind], "searched_by": "paddlex_feat",
                                  "loaded_as": got["index_type"], "count": got["count"],
                                  "same_top1": same, "of": len(queries)})  # fmt: skip
    summary["labels_with_spaces"] = sum(" " in label for label in labels)
    summary["passed"] = all(c["same_top1"] == c["of"] for c in summary["checks"])
    print(json.dumps(summary, indent=2))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
