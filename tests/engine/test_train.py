"""Global.mode=train end to end on a tiny generated dataset: files, resume, guards, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from paddlex_feat.cli import main
from paddlex_feat.engine import train as train_module

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"


def make_dataset(root: Path, classes: int = 6, per_class: int = 3, size: int = 20) -> Path:
    """Coloured shapes: each class a colour, so a few steps of training can separate them."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    lists: dict[str, list[str]] = {"train": [], "gallery": [], "query": []}
    for c in range(classes):
        colour = rng.integers(0, 256, size=3).tolist()
        for i in range(per_class + 2):
            img = np.full((size, size, 3), 255, np.uint8)
            cv2.circle(img, (size // 2 + i % 3 - 1, size // 2), size // 3, colour, -1)
            rel = f"images/c{c}_{i}.jpg"
            cv2.imwrite(str(root / rel), img)
            split = "train" if i < per_class else ("gallery" if i == per_class else "query")
            lists[split].append(f"{rel} {c + 10}")
    for split, lines in lists.items():
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def train_cli(dataset: Path, output: Path, *overrides: str) -> int:
    args = [
        "-c",
        str(CONFIG),
        "-o",
        "Global.mode=train",
        "-o",
        "Global.device=cpu",
        "-o",
        f"Global.dataset_dir={dataset}",
        "-o",
        f"Global.output={output}",
        "-o",
        "Train.pretrain_weight_path=null",
        "-o",
        "Train.num_classes=6",
        "-o",
        "Train.input_size=32",
        "-o",
        "Train.batch_size=8",
        "-o",
        "Train.num_workers=0",
        "-o",
        "Train.warmup_steps=0",
        "-o",
        "Train.epochs_iters=2",
        "-o",
        "Train.learning_rate=0.05",
        "-o",
        "Evaluate.num_workers=0",
    ]
    for o in overrides:
        args += ["-o", o]
    return main(args)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("train")
    dataset = make_dataset(base / "data")
    output = base / "out"
    assert train_cli(dataset, output) == 0
    return dataset, output


def test_train_writes_every_paddlex_file(trained: tuple[Path, Path]) -> None:
    _, output = trained
    result = json.loads((output / "train_result.json").read_text())
    assert result["done_flag"] is True and result["model_name"] == "PP-ShiTuV2_rec"
    for tag in ("epoch_1", "epoch_2", "latest", "best_model"):
        for suffix in ("pdparams", "pdopt", "pdstates"):
            assert (output / tag / f"{tag}.{suffix}").is_file()
    assert result["models"]["last_1"]["pdparams"] == "epoch_2/epoch_2.pdparams"
    assert result["models"]["last_2"]["pdparams"] == "epoch_1/epoch_1.pdparams"
    best = result["models"]["best"]
    for key in ("pdparams", "inference_config", "pdmodel", "pdiparams"):
        assert (output / best[key]).is_file(), key
    assert 0.0 <= best["score"] <= 1.0
    for name in ("config.yaml", "train.log", "label_dict.txt", "metrics.jsonl", "training_curves.png"):
        assert (output / name).is_file(), name
    assert cv2.imread(str(output / "training_curves.png")) is not None
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert {r["type"] for r in records} == {"step", "epoch"}
    assert all("recall1" in r["metrics"] for r in records if r["type"] == "epoch")
    assert (output / "label_dict.txt").read_text().splitlines()[0] == "0 10"
    states = paddle.load(str(output / "latest" / "latest.pdstates"))
    assert states["epoch"] == 2 and states["label_dict"][10] == 0 and states["num_classes"] == 6


def test_evaluate_reproduces_training_recall(trained: tuple[Path, Path]) -> None:
    dataset, output = trained
    result = json.loads((output / "train_result.json").read_text())
    eval_out = output.parent / "eval"
    rc = main(
        [
            "-c",
            str(CONFIG),
            "-o",
            "Global.mode=evaluate",
            "-o",
            "Global.device=cpu",
            "-o",
            f"Global.dataset_dir={dataset}",
            "-o",
            f"Global.output={eval_out}",
            "-o",
            f"Evaluate.weight_path={output / 'best_model' / 'best_model.pdparams'}",
            "-o",
            "Evaluate.num_workers=0",
        ]
    )
    assert rc == 0
    metrics = json.loads((eval_out / "evaluate_result.json").read_text())["metrics"]
    assert abs(metrics["recall1"] - result["models"]["best"]["score"]) <= 1e-6


def test_resume_matches_uninterrupted_training(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, straight = trained
    interrupted = tmp_path / "interrupted"
    original = train_module.train_one_epoch

    def dies_in_epoch_2(run: train_module.TrainRun, epoch: int) -> dict:
        if epoch == 2:
            raise KeyboardInterrupt("killed")
        return original(run, epoch)

    monkeypatch.setattr(train_module, "train_one_epoch", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_cli(dataset, interrupted)
    monkeypatch.setattr(train_module, "train_one_epoch", original)
    assert not (interrupted / "epoch_2").exists()
    assert (
        train_cli(dataset, interrupted, f"Train.resume_path={interrupted}")
        == 0  # the run folder: its latest/
    )
    a = paddle.load(str(straight / "epoch_2" / "epoch_2.pdparams"))
    b = paddle.load(str(interrupted / "epoch_2" / "epoch_2.pdparams"))
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[k].numpy() - b[k].numpy()).max()) for k in a)
    assert worst <= 1e-5


def test_resume_with_save_interval_lists_only_saved_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # epochs 1..3 with save_interval 2: epoch_2/ and epoch_3/ (the last) exist, epoch_1/ does not.
    # After a kill in epoch 3 and a resume, train_result.json must not point at epoch_1/.
    dataset = make_dataset(tmp_path / "d")
    output = tmp_path / "o"
    extra = ("Train.epochs_iters=3", "Train.save_interval=2", "Train.eval_interval=3")
    original = train_module.train_one_epoch

    def dies_in_epoch_3(run: train_module.TrainRun, epoch: int) -> dict:
        if epoch == 3:
            raise KeyboardInterrupt("killed")
        return original(run, epoch)

    monkeypatch.setattr(train_module, "train_one_epoch", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_cli(dataset, output, *extra)
    monkeypatch.setattr(train_module, "train_one_epoch", original)
    assert (
        train_cli(dataset, output, *extra, f"Train.resume_path={output / 'latest' / 'latest.pdparams'}") == 0
    )
    models = json.loads((output / "train_result.json").read_text())["models"]
    listed = [m["pdparams"] for key, m in models.items() if key.startswith("last_") and m]
    assert listed == ["epoch_3/epoch_3.pdparams", "epoch_2/epoch_2.pdparams"]
    assert all((output / p).is_file() for p in listed) and not (output / "epoch_1").exists()


def test_nan_loss_stops_with_epoch_and_step(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, _ = trained
    monkeypatch.setattr(
        train_module, "smoothed_cross_entropy", lambda logits, labels: logits.sum() * float("nan")
    )
    output = tmp_path / "nan"
    assert train_cli(dataset, output) == 1
    result = json.loads((output / "train_result.json").read_text())
    assert result["done_flag"] is False and "epoch 1, step 1" in result["err_msg"]


def _fails(dataset: Path, output: Path, *overrides: str) -> dict:
    assert train_cli(dataset, output, *overrides) != 0
    return json.loads((output / "train_result.json").read_text())


def test_missing_train_list(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    (dataset / "train.txt").unlink()
    assert "train.txt does not exist" in _fails(dataset, tmp_path / "o")["err_msg"]


def test_empty_train_list(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    (dataset / "train.txt").write_text("\n")
    assert "is empty" in _fails(dataset, tmp_path / "o")["err_msg"]


def test_label_outside_num_classes_without_relabel(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    msg = _fails(dataset, tmp_path / "o", "Train.relabel=False")["err_msg"]
    assert "train.txt:1: label 10 is outside 0..5" in msg


def test_wrong_num_classes(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    assert "Set -o Train.num_classes=6" in _fails(dataset, tmp_path / "o", "Train.num_classes=7")["err_msg"]


def test_batch_smaller_than_k(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    assert (
        "smaller than the 4 images per class"
        in _fails(dataset, tmp_path / "o", "Train.batch_size=2")["err_msg"]
    )


def test_resume_path_missing(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    msg = _fails(dataset, tmp_path / "o", f"Train.resume_path={tmp_path / 'nope' / 'latest.pdparams'}")[
        "err_msg"
    ]
    # (the temp folder's name holds "missing": check the words of the message, not the path)
    assert msg.startswith("Train.resume_path: ") and "does not exist (checkpoint file not found" in msg


def test_resume_path_of_another_model(trained: tuple[Path, Path], tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d", classes=5)
    resume = trained[1] / "latest" / "latest.pdparams"
    msg = _fails(dataset, tmp_path / "o", "Train.num_classes=5", f"Train.resume_path={resume}")["err_msg"]
    assert "6 classes" in msg and "5" in msg


def _corrupt_one_image_per_class(dataset: Path) -> None:
    for c in range(6):
        (dataset / "images" / f"c{c}_0.jpg").write_bytes(b"not a jpeg")  # 6 of 18 training images


def test_corrupt_images_over_one_percent_fail(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    _corrupt_one_image_per_class(dataset)
    msg = _fails(dataset, tmp_path / "o", "Train.epochs_iters=1")["err_msg"]
    assert "could not be decoded" in msg and "_0.jpg" in msg


def test_corrupt_images_under_the_limit_are_replaced_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dataset = make_dataset(tmp_path / "d")
    _corrupt_one_image_per_class(dataset)
    monkeypatch.setattr(train_module, "MAX_UNREADABLE_FRACTION", 0.5)
    messages: list[str] = []
    monkeypatch.setattr(train_module.logger, "warning", lambda msg, *a, **k: messages.append(msg))
    assert train_cli(dataset, tmp_path / "o", "Train.epochs_iters=1") == 0
    assert any("unreadable training image(s) were replaced" in m for m in messages)


def test_two_cpu_processes_train_data_parallel(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    output = tmp_path / "o"
    assert train_cli(dataset, output, "Train.cpu_processes=2", "Train.epochs_iters=1") == 0
    result = json.loads((output / "train_result.json").read_text())
    assert result["done_flag"] is True and (output / result["models"]["best"]["pdparams"]).is_file()
    log = (output / "train.log").read_text()
    assert "cpu x2" in log and "batch 4" in log  # the batch of 8 is split between the two processes


def test_without_eval_lists_best_is_the_last_epoch(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    (dataset / "gallery.txt").unlink()
    (dataset / "query.txt").unlink()
    output = tmp_path / "o"
    assert train_cli(dataset, output, "Train.save_interval=2", "Train.log_interval=2") == 0
    result = json.loads((output / "train_result.json").read_text())
    assert result["best_epoch"] == 2 and result["models"]["best"]["score"] is None
    assert not (output / "epoch_1").exists() and (output / "epoch_2").is_dir()  # save_interval honoured
    steps = [json.loads(x) for x in (output / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if r["type"] == "step"] == [2, 4]  # log_interval honoured
    assert "the best model is the last epoch's" in (output / "train.log").read_text()


def test_eval_interval_is_honoured(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "d")
    output = tmp_path / "o"
    assert train_cli(dataset, output, "Train.epochs_iters=3", "Train.eval_interval=2") == 0
    epochs = [json.loads(x) for x in (output / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r["epoch"] for r in epochs if r["type"] == "epoch" and "metrics" in r]
    assert evaluated == [2, 3]  # every 2nd epoch, and always the last


def test_export_after_training_keeps_the_trained_input_size(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    # trained at 32 (not the model's 224): export of the run folder, with no size given, is 32 too
    from paddlex_feat.inference.spec import load_inference_spec

    _, output = trained
    out = tmp_path / "export"
    rc = main(
        ["-c", str(CONFIG), "-o", "Global.mode=export", "-o", "Global.device=cpu",
         "-o", f"Global.output={out}", "-o", f"Export.weight_path={output}"]
    )  # fmt: skip
    assert rc == 0
    assert load_inference_spec(out).input_size == (32, 32)
    assert load_inference_spec(output / "best_model" / "inference").input_size == (32, 32)
    states = paddle.load(str(output / "best_model" / "best_model.pdstates"))
    assert states["train_config"]["Train"]["input_size"] == 32 and states["preprocess"]["input_size"] == 32


def test_clip_arcmargin_path_trains_a_tiny_vit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the CLIP recipe end to end (ArcMargin head, its loss, eval, export of best_model) on a ViT small
    # enough for a CPU test: the registry builder with smaller sizes, swapped in by name
    real_build = train_module.build_model

    def tiny_vit(name: str, num_classes: int):
        return real_build(name, num_classes, embed_dim=32, depth=1, num_heads=2)

    monkeypatch.setattr(train_module, "build_model", tiny_vit)
    dataset = make_dataset(tmp_path / "d")
    output = tmp_path / "o"
    assert (
        train_cli(dataset, output, "Global.model=PP-ShiTuV2_rec_CLIP_vit_base", "Train.epochs_iters=1") == 0
    )
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in records) and "recall1" in records[-1]["metrics"]
    states = paddle.load(str(output / "best_model" / "best_model.pdstates"))
    assert states["model_name"] == "PP-ShiTuV2_rec_CLIP_vit_base" and states["input_size"] == 32
    inference_yml = (output / "best_model" / "inference" / "inference.yml").read_text()
    assert "PP-ShiTuV2_rec_CLIP_vit_base" in inference_yml


@pytest.mark.parametrize("name", ["PP-ShiTuV2_rec", "PP-ShiTuV2_rec_CLIP_vit_base"])
def test_recipe_loss_follows_the_model_table(name: str) -> None:
    from paddlex_feat.engine.losses import arcmargin_cross_entropy, smoothed_cross_entropy
    from paddlex_feat.engine.losses import triplet_angular_margin_loss as triplet

    paddle.seed(0)
    features, logits = paddle.randn([8, 16]), paddle.randn([8, 5])
    labels = paddle.to_tensor([0, 0, 1, 1, 2, 2, 3, 3])
    got = float(train_module.recipe_loss(name)(features, logits, labels))
    if name == "PP-ShiTuV2_rec":
        expected = float(smoothed_cross_entropy(logits, labels) + triplet(features, labels))
    else:
        expected = float(arcmargin_cross_entropy(logits, labels))
    assert got == pytest.approx(expected, rel=1e-6)


def test_dy2st_training_starts_from_a_local_pretrain_file(trained: tuple[Path, Path], tmp_path: Path) -> None:
    # Train.dy2st=True runs the static-graph step; Train.pretrain_weight_path loads a real local file.
    # With a learning rate of ~0 the trained weights stay those of the file, not a fresh init's.
    dataset, first_run = trained
    pretrained = first_run / "best_model" / "best_model.pdparams"
    output = tmp_path / "o"
    overrides = ("Train.dy2st=True", f"Train.pretrain_weight_path={pretrained}", "Train.learning_rate=1e-9")
    assert train_cli(dataset, output, *overrides, "Train.epochs_iters=1") == 0
    log = (output / "train.log").read_text()
    assert f"from {pretrained}" in log and "Loaded 287/287 model tensors" in log
    start = paddle.load(str(pretrained))
    after = paddle.load(str(output / "epoch_1" / "epoch_1.pdparams"))
    key = "backbone.stem.0.conv.weight"
    assert np.abs(after[key].numpy() - start[key].numpy()).max() < 1e-5
    paddle.seed(42)
    fresh = train_module.build_model("PP-ShiTuV2_rec", 6).state_dict()[key].numpy()
    assert np.abs(fresh - start[key].numpy()).max() > 1e-2  # the check above can tell the two apart
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["type"] == "epoch"] == [1] and all(
        np.isfinite(r["loss"]) for r in records
    )
