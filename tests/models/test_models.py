"""Models: registry facts, PaddleClas key/shape parity (fixtures), sizes, forward contract, rep fusion."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddlex_feat.models import build_model, get_model_info, list_models
from paddlex_feat.utils.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
MODELS = list_models()  # every test below runs over whatever the registry holds


def lazy_build(name: str, num_classes: int) -> paddle.nn.Layer:
    """Build without allocating or initialising weights: shapes and names only."""
    with paddle.LazyGuard():
        return build_model(name, num_classes)


def param_count(model: paddle.nn.Layer) -> int:
    return sum(math.prod(p.shape) for p in model.parameters())


# Built for real (weights allocated) in the forward tests; bigger ones (CLIP large) are checked lazily.
RUNNABLE = [name for name in MODELS if param_count(lazy_build(name, 10)) < 100e6]


@pytest.fixture(scope="module")
def built() -> dict[str, paddle.nn.Layer]:
    """One real instance per runnable model (CLIP base takes a few seconds to initialise)."""
    paddle.seed(0)
    return {name: build_model(name, 10) for name in RUNNABLE}


def test_registry_lists_the_three_models() -> None:
    assert MODELS == ["PP-ShiTuV2_rec", "PP-ShiTuV2_rec_CLIP_vit_base", "PP-ShiTuV2_rec_CLIP_vit_large"]
    assert RUNNABLE == ["PP-ShiTuV2_rec", "PP-ShiTuV2_rec_CLIP_vit_base"]


def test_every_family_module_is_imported_by_families() -> None:
    # families.py is a hand-kept import list: a family file it misses would register nothing
    import ast

    registering = sorted(
        p.stem for p in (ROOT / "paddlex_feat" / "models").glob("*.py") if "@register_model(" in p.read_text()
    )
    tree = ast.parse((ROOT / "paddlex_feat" / "models" / "families.py").read_text())
    imported = sorted(
        alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
    )
    assert imported == registering


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(ModelError) as err:
        build_model("PP-ShiTuV3_rec", 10)
    assert "PP-ShiTuV3_rec" in str(err.value)
    for name in MODELS:
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("name", "interpolation"),
    [
        ("PP-ShiTuV2_rec", "bilinear"),
        ("PP-ShiTuV2_rec_CLIP_vit_base", "bicubic"),
        ("PP-ShiTuV2_rec_CLIP_vit_large", "bicubic"),
    ],
)
def test_model_facts(name: str, interpolation: str) -> None:
    info = get_model_info(name)
    assert (info.input_size, info.feature_dim, info.interpolation) == (224, 512, interpolation)
    # PaddleClas's GeneralRecognitionV2 configs normalise all three with ImageNet statistics,
    # written out here (not the registry's constants) so that a wrong constant fails
    assert info.mean == (0.485, 0.456, 0.406) and info.std == (0.229, 0.224, 0.225)
    assert info.pretrained_url.endswith(f"/{name}_pretrained.pdparams")


@pytest.mark.parametrize("name", MODELS)
def test_the_table_states_the_recipe_and_the_architecture(name: str) -> None:
    info = get_model_info(name)
    backbone, neck, head = info.paddleclas_arch
    assert (info.loss, head) in {
        ("ce_triplet", "FC"),
        ("arcmargin", "ArcMargin"),
    }  # the loss follows the head
    model = lazy_build(name, 10)
    assert type(model.head).__name__ == head and type(model.neck).__name__ == neck
    if backbone.startswith("CLIP_vit_"):  # the variant comes from the table, not from the model's name
        patch = int(backbone.split("patch")[1].split("_")[0])
        assert model.backbone.patch_embed.proj.weight.shape[-1] == patch


@pytest.mark.parametrize("name", MODELS)
def test_shipped_config_urls_are_the_tables(name: str) -> None:
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "modules" / "image_feature" / f"{name}.yaml").read_text())
    info = get_model_info(name)
    assert cfg["Train"]["pretrain_weight_path"] == info.backbone_url
    assert cfg["Export"]["weight_path"] == info.pretrained_url


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_matches_paddleclas_fixture(name: str) -> None:
    fixture = json.loads((FIXTURES / f"{name}_state_dict_shapes.json").read_text(encoding="utf-8"))
    model = lazy_build(name, fixture["num_classes"])
    ours = {key: list(value.shape) for key, value in model.state_dict().items()}
    expected = fixture["state_dict_shapes"]
    assert sorted(set(expected) - set(ours)) == []  # missing in ours
    assert sorted(set(ours) - set(expected)) == []  # extra in ours
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}
    assert param_count(model) == fixture["num_params"]


@pytest.mark.parametrize(
    ("name", "millions", "digits"),
    [
        ("PP-ShiTuV2_rec", 4.86, 2),
        ("PP-ShiTuV2_rec_CLIP_vit_base", 86.5, 1),
        ("PP-ShiTuV2_rec_CLIP_vit_large", 304.0, 1),
    ],
)
def test_parameter_count_at_159_classes(name: str, millions: float, digits: int) -> None:
    assert round(param_count(lazy_build(name, 159)) / 1e6, digits) == millions


def test_head_size_follows_num_classes() -> None:
    assert lazy_build("PP-ShiTuV2_rec", 37).state_dict()["head.fc.weight"].shape == [512, 37]
    assert lazy_build("PP-ShiTuV2_rec_CLIP_vit_base", 37).state_dict()["head.weight"].shape == [512, 37]


@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("size", [32, 40])  # 40 is not a multiple of the ViT patch: padding path
def test_eval_forward_returns_feature_tensor(built: dict, name: str, size: int) -> None:
    model = built[name]
    model.eval()
    with paddle.no_grad():
        out = model(paddle.randn([3, 3, size, size]))
    assert isinstance(out, paddle.Tensor)
    assert out.shape == [3, 512]
    assert np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("name", RUNNABLE)
def test_train_forward_is_the_feature_and_logits_a_separate_call(built: dict, name: str) -> None:
    model = built[name]
    model.train()
    label = paddle.to_tensor([[1], [4]], dtype="int64")
    features = model(paddle.randn([2, 3, 32, 32]))
    assert isinstance(features, paddle.Tensor) and features.shape == [2, 512]  # one contract in both modes
    logits = model.logits(features, label)
    assert logits.shape == [2, 10]
    logits.sum().backward()  # trainable end to end
    first = next(p for p in model.backbone.parameters() if not p.stop_gradient)
    assert first.grad is not None
    model.clear_gradients()
    model.eval()


def test_bnneck_bias_is_frozen_at_zero(built: dict) -> None:
    bias = built["PP-ShiTuV2_rec"].neck.feat_bn.bias
    assert bias.stop_gradient
    assert float(paddle.abs(bias).max()) == 0.0


def test_arcmargin_applies_margin_only_to_the_label_in_training() -> None:
    from paddlex_feat.models.necks_heads import ArcMargin

    paddle.seed(1)
    head = ArcMargin(8, 5, margin=0.2, scale=30.0)
    feats = paddle.randn([4, 8])
    label = paddle.to_tensor([0, 1, 2, 3], dtype="int64")
    head.eval()
    cos = head(feats, label).numpy()
    head.train()
    logits = head(feats, label).numpy()
    rows = np.arange(4)
    off_label = np.ones_like(cos, dtype=bool)
    off_label[rows, label.numpy()] = False
    np.testing.assert_allclose(logits[off_label], 30.0 * cos[off_label], rtol=1e-5, atol=1e-5)
    assert (logits[rows, label.numpy()] < 30.0 * cos[rows, label.numpy()]).all()


def _randomise_bn(model: paddle.nn.Layer, seed: int) -> None:
    """Non-trivial BN statistics and affine params, so fusion errors cannot hide behind identity BNs."""
    rng = np.random.default_rng(seed)
    for key, value in model.state_dict().items():
        if key.endswith("._variance"):
            value.set_value(rng.uniform(0.5, 1.5, value.shape).astype("float32"))
        elif key.endswith(("._mean", "bn.bias")):
            value.set_value(rng.normal(0, 0.1, value.shape).astype("float32"))
        elif key.endswith("bn.weight"):
            value.set_value(rng.uniform(0.5, 1.5, value.shape).astype("float32"))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_re_parameterize_keeps_eval_outputs(dtype: str) -> None:
    paddle.seed(2)
    model = build_model("PP-ShiTuV2_rec", 10)
    _randomise_bn(model, seed=3)
    model.to(dtype=dtype)
    model.eval()
    x = paddle.randn([2, 3, 48, 48]).astype(dtype)
    with paddle.no_grad():
        before = model(x).numpy()
        fused = model.re_parameterize()
        after = model(x).numpy()
    assert fused == 8  # stage 3 (6 blocks) and stage 4 (2 blocks) are rep blocks
    if dtype == "float64":
        assert np.abs(after - before).max() < 1e-5  # the fusion algebra itself
    else:
        # float32 rounding grows with the feature scale (|f| ~ 50 at random init): compare relatively.
        assert np.abs(after - before).max() < 1e-5 * np.abs(before).max()


def test_re_parameterize_is_a_no_op_for_clip(built: dict) -> None:
    assert built["PP-ShiTuV2_rec_CLIP_vit_base"].re_parameterize() == 0
