"""RecModel: backbone -> neck -> head, with PaddleClas's sub-layer names ``backbone``/``neck``/``head``.

Forward contract (every registered model follows it), the same in train and eval mode:

* ``model(x)`` returns the ``[N, D]`` feature tensor (the neck output, the retrieval embedding,
  D = 512); it is also what an exported inference model outputs.
* ``model.logits(features, label)`` is the head's ``[N, num_classes]`` output, which only training
  needs. An ArcMargin head applies its margin and scale only in train mode when ``label`` ([N] or
  [N, 1] int64) is given, so training must pass the label (without it the head returns plain cosines).

``re_parameterize()`` fuses every re-parameterisable block (a no-op for models without any).
"""

from __future__ import annotations

import paddle
from paddle import nn


class RecModel(nn.Layer):
    """A recognition model: the neck output is the embedding; the head only serves training."""

    def __init__(self, backbone: nn.Layer, neck: nn.Layer, head: nn.Layer) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """The [N, D] embedding (backbone then neck), in training and in eval."""
        return self.neck(self.backbone(x))

    def logits(self, features: paddle.Tensor, label: paddle.Tensor | None = None) -> paddle.Tensor:
        """The head's class scores of ``features`` (training only; ArcMargin needs ``label``)."""
        return self.head(features, label)

    def re_parameterize(self) -> int:
        """Fuse re-parameterisable blocks in place for export; returns how many were fused."""
        fused = 0
        for layer in self.sublayers():
            if layer is not self and hasattr(layer, "re_parameterize"):
                fused += int(bool(layer.re_parameterize()))
        return fused
