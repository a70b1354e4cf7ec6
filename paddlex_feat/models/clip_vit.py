"""CLIP ViT backbones (B/16 and L/14 at 224) and the two PP-ShiTuV2_rec_CLIP models built on them.

Parameter names and shapes match PaddleClas 2.6.0's ``CLIP_vit_base_patch16_224`` /
``CLIP_vit_large_patch14_224`` built with ``return_embed=True, return_mean_embed=True`` inside
``RecModel`` with an ``FC`` neck (512 -> 512) and an ``ArcMargin`` head (margin 0.2, scale 30).

What the backbone computes (as PaddleClas does, including its quirks): patch embed (no bias),
prepend the class token, add the position embedding, LayerNorm (``ln_pre``), pre-norm blocks with
exact GELU, then - for B/16 only - drop the class token, final LayerNorm on every token, project
each token with ``proj`` [dim, 512] and average the tokens. Inputs whose side is not a multiple of
the patch size are zero-padded, and the position embedding is resized bicubically to the grid,
so small test images work.
"""

from __future__ import annotations

import numpy as np
import paddle
from paddle import nn

from .necks_heads import FC, ArcMargin
from .rec_model import RecModel
from .registry import PRETRAINED_URL_BASE, ModelInfo, get_model_info, register_model

_trunc_normal = nn.initializer.TruncatedNormal(std=0.02)
_zeros = nn.initializer.Constant(0.0)
_ones = nn.initializer.Constant(1.0)


class Attention(nn.Layer):
    """Multi-head self-attention with a fused qkv projection."""

    def __init__(self, dim: int, num_heads: int, attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        n_tokens, dim = x.shape[1], x.shape[2]
        qkv = self.qkv(x).reshape([-1, n_tokens, 3, self.num_heads, dim // self.num_heads])
        q, k, v = qkv.transpose([2, 0, 3, 1, 4]).unbind(0)
        attn = nn.functional.softmax(q.matmul(k, transpose_y=True) * self.scale, axis=-1)
        out = self.attn_drop(attn).matmul(v).transpose([0, 2, 1, 3]).reshape([-1, n_tokens, dim])
        return self.proj_drop(self.proj(out))


class Mlp(nn.Layer):
    """Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # PaddleClas uses exact GELU here, not CLIP's QuickGELU
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DropPath(nn.Layer):
    """Stochastic depth: drop the residual branch per sample while training."""

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = paddle.floor(keep + paddle.rand([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype))
        return x / keep * mask


class Block(nn.Layer):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, epsilon=1e-5)
        self.attn = Attention(dim, num_heads)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, epsilon=1e-5)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Layer):
    """Non-overlapping patches via a strided conv (no bias); pads inputs to a multiple of the patch."""

    def __init__(self, img_size: int, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.grid = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        self.proj = nn.Conv2D(3, embed_dim, patch_size, stride=patch_size, bias_attr=False)

    def forward(self, x: paddle.Tensor) -> tuple[paddle.Tensor, tuple[int, int]]:
        height, width = x.shape[2], x.shape[3]
        pad_h, pad_w = -height % self.patch_size, -width % self.patch_size
        if pad_h or pad_w:
            x = nn.functional.pad(x, [0, pad_w, 0, pad_h], data_format="NCHW")  # bottom/right, as PaddleClas
        x = self.proj(x)
        grid = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose([0, 2, 1]), grid


def resize_pos_embed(
    pos_embed: paddle.Tensor, src_grid: tuple[int, int], dst_grid: tuple[int, int]
) -> paddle.Tensor:
    """Bicubically resize the patch part of a [1, 1 + H*W, C] position embedding to another grid."""
    if tuple(src_grid) == tuple(dst_grid):
        return pos_embed
    channels = pos_embed.shape[2]
    cls_part, patch_part = pos_embed[:, :1], pos_embed[:, 1:]
    patch_part = patch_part.reshape([-1, src_grid[0], src_grid[1], channels]).transpose([0, 3, 1, 2])
    patch_part = nn.functional.interpolate(patch_part, size=dst_grid, mode="bicubic", align_corners=False)
    patch_part = patch_part.flatten(2).transpose([0, 2, 1])
    return paddle.concat([cls_part, patch_part], axis=1)


class CLIPVisionTransformer(nn.Layer):
    """CLIP image tower returning one [N, output_dim] embedding (mean of projected tokens)."""

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        output_dim: int = 512,
        drop_cls_token: bool = True,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        # PaddleClas drops the class token before the final norm for B/16 only (its _CLIP_diff table).
        self.drop_cls_token = drop_cls_token
        self.patch_embed = PatchEmbed(img_size, patch_size, embed_dim)
        self.pos_embed = self.create_parameter(
            [1, self.patch_embed.num_patches + 1, embed_dim], default_initializer=_zeros
        )
        self.cls_token = self.create_parameter([1, 1, embed_dim], default_initializer=_zeros)
        self.ln_pre = nn.LayerNorm(embed_dim)
        self.proj = self.create_parameter(
            [embed_dim, output_dim],
            default_initializer=nn.initializer.Normal(std=embed_dim**-0.5),
        )
        rates = np.linspace(0, drop_path_rate, depth)
        self.blocks = nn.LayerList([Block(embed_dim, num_heads, mlp_ratio, float(rate)) for rate in rates])
        self.norm = nn.LayerNorm(embed_dim, epsilon=1e-5)
        self._init_weights()

    def _init_weights(self) -> None:
        _trunc_normal(self.pos_embed)
        _trunc_normal(self.cls_token)
        for layer in self.sublayers():
            if isinstance(layer, nn.Linear):
                _trunc_normal(layer.weight)
                if layer.bias is not None:
                    _zeros(layer.bias)
            elif isinstance(layer, nn.LayerNorm):
                _ones(layer.weight)
                _zeros(layer.bias)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        tokens, grid = self.patch_embed(x)
        cls_tokens = self.cls_token.expand([tokens.shape[0], -1, -1])
        tokens = paddle.concat([cls_tokens, tokens], axis=1)
        tokens = tokens + resize_pos_embed(self.pos_embed, self.patch_embed.grid, grid)
        tokens = self.ln_pre(tokens)
        for block in self.blocks:
            tokens = block(tokens)
        if self.drop_cls_token:
            tokens = tokens[:, 1:, :]
        return (self.norm(tokens) @ self.proj).mean(1)


_CLIP_VARIANTS = {
    # name: (patch, dim, depth, heads, drop_cls_token)
    "CLIP_vit_base_patch16_224": (16, 768, 12, 12, True),
    "CLIP_vit_large_patch14_224": (14, 1024, 24, 16, False),
}


def _build_clip_rec(
    model_name: str, num_classes: int, feature_dim: int = 512, drop_path_rate: float = 0.0, **vit: int
) -> RecModel:
    """CLIP backbone + FC neck (512 -> feature_dim) + ArcMargin head (margin 0.2, scale 30).

    ``vit`` may override the variant's ``patch_size``, ``embed_dim``, ``depth`` or ``num_heads``
    (a tiny ViT for tests; the published weights fit only the table's sizes).
    """
    patch, dim, depth, heads, drop_cls = _CLIP_VARIANTS[get_model_info(model_name).paddleclas_arch[0]]
    sizes = {"patch_size": patch, "embed_dim": dim, "depth": depth, "num_heads": heads}
    unknown = set(vit) - set(sizes)
    if unknown:
        raise TypeError(f"{model_name}: unknown override(s) {sorted(unknown)}; known: {sorted(sizes)}")
    backbone = CLIPVisionTransformer(
        img_size=224,
        output_dim=512,
        drop_cls_token=drop_cls,
        drop_path_rate=drop_path_rate,
        **(sizes | vit),
    )
    neck = FC(512, feature_dim)
    head = ArcMargin(feature_dim, num_classes, margin=0.2, scale=30.0)
    return RecModel(backbone, neck, head)


def _clip_info(name: str, backbone: str) -> ModelInfo:
    """CLIP models evaluate at 224 bicubic with ImageNet mean/std (PaddleClas GeneralRecognitionV2 configs)."""
    return ModelInfo(
        name=name,
        interpolation="bicubic",
        pretrained_url=f"{PRETRAINED_URL_BASE}/{name}_pretrained.pdparams",
        backbone_url=f"{PRETRAINED_URL_BASE}/{name}_backbone_LAION400M_pretrained.pdparams",
        loss="arcmargin",
        paddleclas_arch=(backbone, "FC", "ArcMargin"),
    )


@register_model(_clip_info("PP-ShiTuV2_rec_CLIP_vit_base", "CLIP_vit_base_patch16_224"))
def pp_shituv2_rec_clip_vit_base(num_classes: int, **overrides) -> RecModel:
    """PP-ShiTuV2_rec_CLIP_vit_base: CLIP ViT-B/16 + FC neck + ArcMargin head."""
    return _build_clip_rec("PP-ShiTuV2_rec_CLIP_vit_base", num_classes, **overrides)


@register_model(_clip_info("PP-ShiTuV2_rec_CLIP_vit_large", "CLIP_vit_large_patch14_224"))
def pp_shituv2_rec_clip_vit_large(num_classes: int, **overrides) -> RecModel:
    """PP-ShiTuV2_rec_CLIP_vit_large: CLIP ViT-L/14 + FC neck + ArcMargin head."""
    return _build_clip_rec("PP-ShiTuV2_rec_CLIP_vit_large", num_classes, **overrides)
