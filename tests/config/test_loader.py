"""Config loading: typed overrides and every bad input named in the foundation issue."""

from __future__ import annotations

from pathlib import Path

import pytest

from paddlex_feat.cli import main
from paddlex_feat.config import MODEL_NAMES, load_config, parse_override
from paddlex_feat.utils.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "modules" / "image_feature"


def load(*overrides: str, path: Path | None = None) -> dict:
    return load_config(path or CONFIG_DIR / "PP-ShiTuV2_rec.yaml", list(overrides))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shipped_configs_load_with_paddlex_defaults(name: str) -> None:
    cfg = load(path=CONFIG_DIR / f"{name}.yaml")
    assert cfg["Global"]["model"] == name
    assert cfg["Global"]["dataset_dir"] == "./dataset/demo"
    assert cfg["Train"]["epochs_iters"] == 20 and cfg["Train"]["warmup_steps"] == 5
    assert cfg["Evaluate"]["weight_path"] == "output/best_model/best_model.pdparams"
    assert cfg["Predict"]["kernel_option"]["run_mode"] == "paddle"
    expected = (128, 0.01) if name == "PP-ShiTuV2_rec" else (32, 0.001)
    assert (cfg["Train"]["batch_size"], cfg["Train"]["learning_rate"]) == expected
    # keys we add get their defaults
    assert cfg["Global"]["seed"] == 42 and cfg["Evaluate"]["topk"] == [1, 5]


def test_override_types_are_coerced_by_the_schema() -> None:
    cfg = load(
        "Train.epochs_iters=5",
        "Train.learning_rate=1e-3",
        "Train.dy2st=True",
        "Train.resume_path=null",
        "Evaluate.topk=[1, 5, 10]",
        "CheckDataset.split.train_percent=70",
        "Predict.kernel_option.run_mode=mkldnn",
        "Global.dataset_dir=2024",
        "Global.output=out_1.10",
        "Train.input_size=None",
    )
    assert cfg["Train"]["epochs_iters"] == 5
    assert cfg["Train"]["learning_rate"] == pytest.approx(1e-3) and isinstance(
        cfg["Train"]["learning_rate"], float
    )
    assert cfg["Train"]["dy2st"] is True
    assert cfg["Train"]["resume_path"] is None
    assert cfg["Evaluate"]["topk"] == [1, 5, 10]
    assert cfg["CheckDataset"]["split"]["train_percent"] == 70
    assert cfg["Predict"]["kernel_option"]["run_mode"] == "mkldnn"
    assert cfg["Global"]["dataset_dir"] == "2024"  # a str key keeps the text, not a number
    assert cfg["Global"]["output"] == "out_1.10"
    assert cfg["Train"]["input_size"] is None


def test_int_given_to_a_float_key_becomes_float() -> None:
    assert load("Train.learning_rate=1")["Train"]["learning_rate"] == 1.0


def test_value_may_contain_equals_sign() -> None:
    cfg = load("Predict.input=http://host/img.jpg?a=1&b=2")
    assert cfg["Predict"]["input"] == "http://host/img.jpg?a=1&b=2"
    assert parse_override("A.b=c=d") == ("A.b", "c=d")


def test_null_is_matched_exactly_not_as_substring() -> None:
    # PaddleX treats any value containing "None" as None; a path like this must survive.
    cfg = load("Train.pretrain_weight_path=/data/NoneSuch.pdparams")
    assert cfg["Train"]["pretrain_weight_path"] == "/data/NoneSuch.pdparams"


def test_predict_input_accepts_a_list() -> None:
    cfg = load("Predict.input=[a.jpg, 'b c.jpg']")
    assert cfg["Predict"]["input"] == ["a.jpg", "b c.jpg"]


def test_last_override_wins() -> None:
    assert load("Train.batch_size=8", "Train.batch_size=16")["Train"]["batch_size"] == 16


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="Config file not found: .*nope.yaml"):
        load(path=Path("nope.yaml"))


def test_unparsable_yaml_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("Global:\n  model: PP-ShiTuV2_rec\n  mode: [train\nTrain:\n  batch_size: 4\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line \d+, column \d+: invalid YAML"):
        load(path=bad)


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "dup.yaml"
    bad.write_text("Global:\n  model: PP-ShiTuV2_rec\n  mode: train\n  mode: evaluate\n")
    with pytest.raises(ConfigError, match="duplicate key 'mode'"):
        load(path=bad)


def test_override_without_equals() -> None:
    with pytest.raises(ConfigError, match="has no '='"):
        load("Train.epochs_iters")


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [
        ("Train.epoch_iters=3", "Train.epochs_iters"),
        ("Trian.batch_size=3", "Train.batch_size"),
        ("CheckDataset.split.train_precent=70", "CheckDataset.split.train_percent"),
    ],
)
def test_unknown_key_names_closest_valid_key(override: str, suggestion: str) -> None:
    with pytest.raises(ConfigError, match=f"Did you mean '{suggestion}'"):
        load(override)


def test_unknown_key_in_yaml_file(tmp_path: Path) -> None:
    bad = tmp_path / "typo.yaml"
    bad.write_text("Global:\n  model: PP-ShiTuV2_rec\n  mode: train\nTrain:\n  epoch_iters: 3\n")
    with pytest.raises(ConfigError, match=r"Train.epoch_iters.*in .*typo.yaml.*Train.epochs_iters"):
        load(path=bad)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("Train.batch_size=abc", "Train.batch_size must be an integer, got 'abc'"),
        ("Train.batch_size=2.5", "Train.batch_size must be an integer"),
        ("Train.learning_rate=fast", "Train.learning_rate must be a number"),
        ("Train.dy2st=maybe", "Train.dy2st must be true or false"),
        ("Train.batch_size=null", "It cannot be null"),
        ("Evaluate.topk=[1, x]", r"Evaluate.topk\[1\] must be an integer"),
        ("Train.batch_size=0", "must be a positive integer"),
        ("Global.device=tpu:0", "Global.device='tpu:0' is not valid"),
    ],
)
def test_wrong_value_type(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(override)


def test_wrong_type_in_yaml_file(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("Global:\n  model: PP-ShiTuV2_rec\n  mode: train\nTrain:\n  batch_size: big\n")
    with pytest.raises(ConfigError, match="Train.batch_size must be an integer, got 'big' \\(in .*t.yaml\\)"):
        load(path=bad)


def test_unknown_mode_lists_valid_modes() -> None:
    with pytest.raises(ConfigError, match="Valid values: check_dataset, train, evaluate, export, predict"):
        load("Global.mode=fit")


def test_unknown_model_lists_valid_models() -> None:
    with pytest.raises(ConfigError, match="PP-ShiTuV2_rec_CLIP_vit_large"):
        load("Global.model=ResNet50")


def test_section_is_not_a_key() -> None:
    with pytest.raises(ConfigError, match="is a section, not a key"):
        load("CheckDataset.split=70")


def test_missing_required_key(tmp_path: Path) -> None:
    cfg = tmp_path / "min.yaml"
    cfg.write_text("Global:\n  mode: train\n")
    with pytest.raises(ConfigError, match="Missing required key 'Global.model'"):
        load(path=cfg)


def test_minimal_paddlex_style_config_gets_defaults(tmp_path: Path) -> None:
    cfg_path = tmp_path / "min.yaml"
    cfg_path.write_text("Global:\n  model: PP-ShiTuV2_rec\n  mode: train\n")
    cfg = load(path=cfg_path)
    assert cfg["Train"]["batch_size"] == 128 and cfg["CheckDataset"]["split"]["enable"] is False


def test_yaml_float_without_dot_is_read_as_float(tmp_path: Path) -> None:
    # PyYAML reads "1e-5" as a string (YAML 1.1); a float key must still accept it.
    cfg_path = tmp_path / "lr.yaml"
    cfg_path.write_text("Global:\n  model: PP-ShiTuV2_rec\n  mode: train\nTrain:\n  learning_rate: 1e-5\n")
    assert load(path=cfg_path)["Train"]["learning_rate"] == pytest.approx(1e-5)


def test_schema_model_names_are_the_registry() -> None:
    # the config schema validates Global.model without importing paddle; it must list exactly the
    # registered models, or a new model would build but be refused by the config
    from paddlex_feat.config import MODEL_NAMES
    from paddlex_feat.models.registry import list_models

    assert sorted(MODEL_NAMES) == sorted(list_models())


@pytest.mark.parametrize(
    "override, message",
    [
        ("Train.input_size=-5", r"Train.input_size=-5 must be a positive integer"),
        (
            "Train.input_size=0",
            r"Train.input_size=0 must be a positive integer.*null uses the model's own size",
        ),
        ("Export.input_size=-3", r"Export.input_size=-3 must be a positive integer"),
        ("Predict.url_timeout=0", r"Predict.url_timeout=0.0 must be positive"),
        ("Predict.url_timeout=-1.5", r"Predict.url_timeout=-1.5 must be positive"),
        ("Predict.max_image_bytes=0", r"Predict.max_image_bytes=0 must be positive"),
    ],
)
def test_sizes_and_timeouts_must_be_positive(override: str, message: str, capsys) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIG_DIR / "PP-ShiTuV2_rec.yaml", [override])
    assert main(["-c", str(CONFIG_DIR / "PP-ShiTuV2_rec.yaml"), "-o", override]) == 2  # a usage error: exit 2


@pytest.mark.parametrize("key", ["Train.input_size", "Export.input_size"])
def test_clip_sizes_are_a_multiple_of_the_patch(key: str) -> None:
    large = CONFIG_DIR / "PP-ShiTuV2_rec_CLIP_vit_large.yaml"
    with pytest.raises(ConfigError, match=rf"{key}=100 is not a multiple of .*patch size 14; use 98 or 112"):
        load_config(large, [f"{key}=100"])
    assert load_config(large, [f"{key}=112"])[key.split(".")[0]]["input_size"] == 112
    assert (
        load_config(CONFIG_DIR / "PP-ShiTuV2_rec.yaml", [f"{key}=100"])[key.split(".")[0]]["input_size"]
        == 100
    )  # a CNN takes any size


@pytest.mark.parametrize(
    "text, expected", [("1/4", (1, 4)), (" 4 / 4 ", (4, 4)), ("1/1", (1, 1)), (None, None)]
)
def test_index_shard_parses(text, expected) -> None:
    from paddlex_feat.config.loader import parse_shard

    assert parse_shard(text) == expected


@pytest.mark.parametrize(
    "override", ["Index.shard=3/2", "Index.shard=0/0", "Index.shard=a/b", "Index.shard=-1/2"]
)
def test_malformed_index_shard_is_a_config_error(override: str) -> None:
    with pytest.raises(ConfigError, match="is not a shard: write i/n"):
        load("Index.backend=milvus", override)


def test_milvus_collection_name_is_checked_before_connecting() -> None:
    with pytest.raises(ConfigError, match="not a valid Milvus collection name"):
        load("Index.backend=milvus", "Index.collection=my-products")
