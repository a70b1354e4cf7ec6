"""PP-LCNetV2_base in its ShiTu variant, and the PP-ShiTuV2_rec model built on it.

Parameter names and shapes match PaddleClas 2.6.0's ``PPLCNetV2_base_ShiTu`` inside ``RecModel``
(``backbone.stem.0.conv.weight`` ... ``neck.feat_bn._mean``, ``head.fc.weight``), so official
``PP-ShiTuV2_rec_pretrained.pdparams`` files load unchanged.

The ShiTu variant differs from the classification net in four ways: stage 4 runs at stride 1,
the last 1x1 conv (1024 -> 512) has a bias and no activation, the network stops after ``flatten``
(no classifier), and dropout 0.2 is ``downscale_in_infer`` (eval outputs are scaled by 0.8).
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn
from paddle.regularizer import L2Decay

from .necks_heads import FC, BNNeck
from .rec_model import RecModel
from .registry import PRETRAINED_URL_BASE, ModelInfo, register_model

# Per stage: in_channels, dw kernel, split_pw, use_rep, use_se, use_shortcut (PP-LCNetV2 table).
STAGE_CONFIG = (
    (64, 3, False, False, False, False),
    (128, 3, False, False, False, False),
    (256, 5, True, True, True, False),
    (512, 5, False, True, False, True),
)
BASE_DEPTHS = (2, 2, 6, 2)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _no_decay() -> paddle.ParamAttr:
    """BatchNorm scale/shift are excluded from L2 weight decay, as in PaddleClas."""
    return paddle.ParamAttr(regularizer=L2Decay(0.0))


class ConvBNLayer(nn.Layer):
    """Conv (no bias) + BatchNorm + optional ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2D(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=groups,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.KaimingNormal()),
            bias_attr=False,
        )
        self.bn = nn.BatchNorm2D(out_channels, weight_attr=_no_decay(), bias_attr=_no_decay())
        self.act = nn.ReLU() if act else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class SEModule(nn.Layer):
    """Squeeze-and-excitation with a sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.conv1 = nn.Conv2D(channels, channels // reduction, 1)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2D(channels // reduction, channels, 1)
        self.hardsigmoid = nn.Sigmoid()  # PaddleClas's name for a plain sigmoid

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        gate = self.hardsigmoid(self.conv2(self.act(self.conv1(self.avg_pool(x)))))
        return x * gate


class RepDepthwiseSeparable(nn.Layer):
    """Depthwise (optionally re-parameterisable) + optional SE + pointwise conv(s) + optional shortcut.

    With ``use_rep`` the depthwise part trains as parallel conv+BN branches of kernel k, k-2, ..., 1
    (k=1 only at stride 1); ``re_parameterize`` folds them into the single biased ``dw_conv``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        dw_size: int = 3,
        split_pw: bool = False,
        use_rep: bool = False,
        use_se: bool = False,
        use_shortcut: bool = False,
    ) -> None:
        super().__init__()
        self.dw_size = dw_size
        self.use_rep = use_rep
        self.use_se = use_se
        self.split_pw = split_pw
        self.use_shortcut = use_shortcut and stride == 1 and in_channels == out_channels
        self.is_repped = False
        if use_rep:
            self.dw_conv_list = nn.LayerList(
                [
                    ConvBNLayer(in_channels, in_channels, k, stride, groups=in_channels, act=False)
                    for k in range(dw_size, 0, -2)
                    if not (k == 1 and stride != 1)  # a 1x1 branch cannot shift pixels at stride 2
                ]
            )
            self.dw_conv = nn.Conv2D(
                in_channels,
                in_channels,
                dw_size,
                stride=stride,
                padding=(dw_size - 1) // 2,
                groups=in_channels,
            )
        else:
            self.dw_conv = ConvBNLayer(in_channels, in_channels, dw_size, stride, groups=in_channels)
        self.act = nn.ReLU()
        if use_se:
            self.se = SEModule(in_channels)
        if split_pw:
            half = int(out_channels * 0.5)
            self.pw_conv_1 = ConvBNLayer(in_channels, half, 1, 1)
            self.pw_conv_2 = ConvBNLayer(half, out_channels, 1, 1)
        else:
            self.pw_conv = ConvBNLayer(in_channels, out_channels, 1, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        identity = x
        if not self.use_rep:
            x = self.dw_conv(x)
        elif self.is_repped:
            x = self.act(self.dw_conv(x))
        else:
            y = self.dw_conv_list[0](x)
            for branch in self.dw_conv_list[1:]:
                y = y + branch(x)
            x = self.act(y)
        if self.use_se:
            x = self.se(x)
        x = self.pw_conv_2(self.pw_conv_1(x)) if self.split_pw else self.pw_conv(x)
        return x + identity if self.use_shortcut else x

    @paddle.no_grad()
    def re_parameterize(self) -> bool:
        """Fold the conv+BN branches into ``dw_conv``; returns whether this block was re-parameterisable."""
        if not self.use_rep:
            return False
        kernel_sum, bias_sum = 0, 0
        for branch in self.dw_conv_list:
            std = (branch.bn._variance + branch.bn._epsilon).sqrt()
            scale = branch.bn.weight / std
            kernel = branch.conv.weight * scale.reshape([-1, 1, 1, 1])
            pad = (self.dw_size - kernel.shape[-1]) // 2  # centre smaller kernels inside the largest
            if pad:
                kernel = F.pad(kernel, [pad, pad, pad, pad])
            kernel_sum = kernel_sum + kernel
            bias_sum = bias_sum + branch.bn.bias - branch.bn._mean * scale
        self.dw_conv.weight.set_value(kernel_sum)
        self.dw_conv.bias.set_value(bias_sum)
        self.is_repped = True
        return True


class PPLCNetV2ShiTu(nn.Layer):
    """PP-LCNetV2 backbone (ShiTu variant): image [N, 3, H, W] -> embedding [N, class_expand]."""

    def __init__(
        self,
        scale: float = 1.0,
        depths: tuple[int, ...] = BASE_DEPTHS,
        class_expand: int = 512,
        dropout_prob: float = 0.2,
    ) -> None:
        super().__init__()
        stem_out = make_divisible(64 * scale)
        self.stem = nn.Sequential(
            ConvBNLayer(3, make_divisible(32 * scale), 3, stride=2),
            RepDepthwiseSeparable(make_divisible(32 * scale), stem_out, stride=1, dw_size=3),
        )
        self.stages = nn.LayerList()
        last_stage = len(STAGE_CONFIG) - 1
        for stage_idx, (channels, kernel, split_pw, use_rep, use_se, use_shortcut) in enumerate(STAGE_CONFIG):
            blocks = []
            for i in range(depths[stage_idx]):
                # ShiTu keeps stage 4 at stride 1 so the last feature map stays 14x14 at 224 input.
                stride = 2 if i == 0 and stage_idx != last_stage else 1
                blocks.append(
                    RepDepthwiseSeparable(
                        make_divisible((channels if i == 0 else channels * 2) * scale),
                        make_divisible(channels * 2 * scale),
                        stride=stride,
                        dw_size=kernel,
                        split_pw=split_pw,
                        use_rep=use_rep,
                        use_se=use_se,
                        use_shortcut=use_shortcut,
                    )
                )
            self.stages.append(nn.Sequential(*blocks))
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.last_conv = nn.Conv2D(make_divisible(STAGE_CONFIG[-1][0] * 2 * scale), class_expand, 1)
        self.dropout = nn.Dropout(p=dropout_prob, mode="downscale_in_infer")
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = self.dropout(self.last_conv(self.avg_pool(x)))
        return self.flatten(x)


@register_model(
    ModelInfo(
        name="PP-ShiTuV2_rec",
        interpolation="bilinear",
        pretrained_url=f"{PRETRAINED_URL_BASE}/PP-ShiTuV2_rec_pretrained.pdparams",
        # PaddleX's Train.pretrain_weight_path for this model is the full pretrained model.
        backbone_url=f"{PRETRAINED_URL_BASE}/PP-ShiTuV2_rec_pretrained.pdparams",
        loss="ce_triplet",
        paddleclas_arch=("PPLCNetV2_base_ShiTu", "BNNeck", "FC"),
    )
)
def pp_shituv2_rec(num_classes: int, feature_dim: int = 512, dropout_prob: float = 0.2) -> RecModel:
    """PP-ShiTuV2_rec: PPLCNetV2_base_ShiTu + BNNeck(512) + FC(512 -> num_classes, no bias)."""
    backbone = PPLCNetV2ShiTu(class_expand=feature_dim, dropout_prob=dropout_prob)
    neck = BNNeck(feature_dim)
    head = FC(feature_dim, num_classes, bias=False, init_std=0.001)
    return RecModel(backbone, neck, head)
