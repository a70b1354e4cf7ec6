"""Global.mode=build_index and search through the CLI: build, sync, search, and their failures."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "retrieval"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from infer_helpers import save_tiny_model  # noqa: E402
from retrieval_helpers import write_image  # noqa: E402

from paddlex_feat.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def shop(tmp_path):
    """A folder gallery: label sub-folders with spaces in their names."""
    root = tmp_path / "shop"
    for i, label in enumerate(["Coca Cola 330 ml", "Coca Cola 330 ml", "Sprite", "Fanta"]):
        write_image(root / label / f"{i}.png", i)
    return root


def cli(tmp_path, mode, *overrides):
    out = tmp_path / "out"
    args = [
        "-c",
        str(CONFIG),
        "-o",
        f"Global.mode={mode}",
        "-o",
        f"Global.output={out}",
        "-o",
        "Global.device=cpu",
    ]
    for o in overrides:
        args += ["-o", o]
    rc = main(args)
    if not (out / f"{mode}_result.json").exists():  # a usage error (exit 2) writes no result
        return rc, {"log": (out / f"{mode}.log").read_text()}
    return rc, json.loads((out / f"{mode}_result.json").read_text())


def test_build_then_search_then_sync(tmp_path, model_dir, shop):
    index = tmp_path / "index"
    rc, built = cli(
        tmp_path,
        "build_index",
        f"Index.model_dir={model_dir}",
        f"Index.gallery={shop}",
        f"Index.path={index}",
    )
    assert rc == 0 and built["done_flag"] and built["action"] == "build" and built["count"] == 4
    query = shop / "Sprite" / "2.png"
    rc, found = cli(tmp_path, "search", f"Index.path={index}", f"Predict.input={query}", "Index.top_k=2")
    assert (
        rc == 0 and found["results"][0]["label"] == "Sprite" and found["results"][0]["ids"][0] == 3
    )  # sorted folders: Coca Cola, Fanta, Sprite
    assert len(found["results"][0]["labels"]) == 2 and (tmp_path / "out" / "2_res.json").is_file()
    # sync: one new image, one deleted; only the new one is embedded
    write_image(shop / "Pepsi" / "9.png", 9)
    shutil.rmtree(shop / "Fanta")
    rc, synced = cli(
        tmp_path,
        "build_index",
        f"Index.model_dir={model_dir}",
        f"Index.gallery={shop}",
        f"Index.path={index}",
    )
    assert rc == 0 and synced["action"] == "sync"
    assert (synced["num_added"], synced["num_removed"], synced["num_unchanged"], synced["count"]) == (
        1,
        1,
        3,
        4,
    )
    rc, found = cli(tmp_path, "search", f"Index.path={index}", f"Predict.input={shop / 'Pepsi' / '9.png'}",
                    "Index.score_threshold=2.0")  # fmt: skip
    assert found["results"][0]["label"] == "unknown" and found["results"][0]["labels"][0] == "Pepsi"
    assert found["results"][0]["ids"][0] == 4 and found["score_threshold"] == 2.0


def test_missing_gallery_key_fails_with_the_key(tmp_path, model_dir):
    rc, result = cli(tmp_path, "build_index", f"Index.model_dir={model_dir}", f"Index.path={tmp_path / 'i'}")
    assert rc == 2 and "Index.gallery is not set" in result["log"]  # a usage error: no result file


def test_search_of_a_missing_index_fails_clearly(tmp_path):
    rc, result = cli(tmp_path, "search", f"Index.path={tmp_path / 'nope'}", "Predict.input=x.jpg")
    assert rc == 1 and result["done_flag"] is False and "does not exist. Build one first" in result["err_msg"]


def test_search_with_another_model_fails_naming_both(tmp_path, model_dir, shop):
    index = tmp_path / "index"
    assert (
        cli(
            tmp_path,
            "build_index",
            f"Index.model_dir={model_dir}",
            f"Index.gallery={shop}",
            f"Index.path={index}",
        )[0]
        == 0
    )
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    data = bytearray((other / "inference.pdiparams").read_bytes())
    data[-1] ^= 1
    (other / "inference.pdiparams").write_bytes(bytes(data))
    rc, result = cli(tmp_path, "search", f"Index.path={index}", f"Index.model_dir={other}",
                     f"Predict.input={shop / 'Sprite' / '2.png'}")  # fmt: skip
    assert rc == 1 and result["err_type"] == "GalleryIndexError"
    assert str(model_dir.resolve()) in result["err_msg"] and str(other) in result["err_msg"]


def test_unknown_index_type_is_a_usage_error(tmp_path, capsys):
    rc = main(["-c", str(CONFIG), "-o", "Global.mode=build_index", "-o", "Index.index_type=HNSW32"])
    assert rc == 2 and "Index.index_type" in capsys.readouterr().err


def test_rehash_takes_a_boolean(tmp_path, capsys):
    rc = main(["-c", str(CONFIG), "-o", "Global.mode=build_index", "-o", "Index.rehash=sometimes"])
    assert rc == 2 and "Index.rehash" in capsys.readouterr().err
