"""Necks and heads that sit on a backbone: BNNeck, FC and ArcMargin (PaddleClas parameter names).

Every head takes ``(features, label=None)`` so that the composed model can pass the label through;
only ArcMargin uses it.
"""

from __future__ import annotations

import math

import paddle
from paddle import nn


class BNNeck(nn.Layer):
    """Flatten then BatchNorm1D; the BN bias is frozen at 0 (the ShiTu "BNNeck" trick)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.feat_bn = nn.BatchNorm1D(
            num_features,
            momentum=0.9,
            epsilon=1e-5,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(1.0)),
            bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0)),
        )
        # PaddleClas freezes it with lr 1e-20; stop_gradient keeps it exactly 0 and out of the optimizer.
        self.feat_bn.bias.stop_gradient = True
        self.flatten = nn.Flatten()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.feat_bn(self.flatten(x))


class FC(nn.Layer):
    """A linear layer named ``fc`` (``<prefix>.fc.weight`` is stored [in, out], as Paddle does)."""

    def __init__(
        self, embedding_size: int, class_num: int, bias: bool = True, init_std: float | None = None
    ) -> None:
        super().__init__()
        self.embedding_size = embedding_size
        self.class_num = class_num
        # PP-ShiTuV2's head uses Normal(0.001); the CLIP neck keeps PaddleClas's XavierNormal default.
        initializer = nn.initializer.Normal(std=init_std) if init_std else nn.initializer.XavierNormal()
        self.fc = nn.Linear(
            embedding_size,
            class_num,
            weight_attr=paddle.ParamAttr(initializer=initializer),
            bias_attr=None if bias else False,
        )

    def forward(self, x: paddle.Tensor, label: paddle.Tensor | None = None) -> paddle.Tensor:
        return self.fc(x)


class ArcMargin(nn.Layer):
    """Additive angular margin (ArcFace) logits; without a label (or in eval) it returns plain cosines."""

    def __init__(
        self,
        embedding_size: int,
        class_num: int,
        margin: float = 0.5,
        scale: float = 80.0,
        easy_margin: bool = False,
    ) -> None:
        super().__init__()
        self.embedding_size = embedding_size
        self.class_num = class_num
        self.margin = margin
        self.scale = scale
        self.easy_margin = easy_margin
        self.weight = self.create_parameter(
            shape=[embedding_size, class_num],
            is_bias=False,
            default_initializer=nn.initializer.XavierNormal(),
        )

    def forward(self, x: paddle.Tensor, label: paddle.Tensor | None = None) -> paddle.Tensor:
        x = x / paddle.sqrt(paddle.sum(paddle.square(x), axis=1, keepdim=True))
        weight = self.weight / paddle.sqrt(paddle.sum(paddle.square(self.weight), axis=0, keepdim=True))
        cos = paddle.matmul(x, weight)
        if not self.training or label is None:
            return cos
        sin = paddle.sqrt(1.0 - paddle.square(cos) + 1e-6)
        phi = cos * math.cos(self.margin) - sin * math.sin(self.margin)
        if self.easy_margin:
            phi = paddle.where(cos > 0, phi, cos)
        else:
            # Past theta = pi - m the margin would increase cos; fall back to a linear penalty there.
            threshold = -math.cos(self.margin)
            phi = paddle.where(cos > threshold, phi, cos - math.sin(self.margin) * self.margin)
        one_hot = nn.functional.one_hot(label.reshape([-1]).astype("int64"), self.class_num)
        return (one_hot * phi + (1.0 - one_hot) * cos) * self.scale
