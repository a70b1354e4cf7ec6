"""RecModel: backbone -> neck -> head, with PaddleClas's sub-layer names ``backbone``/``neck``/``head``.

Forward contract (every registered model follows it):

* train mode: ``model(x, label=None)`` returns ``{"features": [N, D], "logits": [N, num_classes]}``.
  ``features`` is the neck output (the retrieval embedding, D = 512). ``logits`` is the head output;
  an ArcMargin head applies its margin and scale only when ``label`` ([N] or [N, 1] int64) is given,
  so training must pass the label (without it the head returns plain cosines).
* eval mode: ``model(x)`` returns the ``[N, D]`` feature tensor itself (no head is run), which is
  also what an exported inference model outputs.

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

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        """The [N, D] embedding (backbone then neck)."""
        return self.neck(self.backbone(x))

    def forward(
        self, x: paddle.Tensor, label: paddle.Tensor | None = None
    ) -> paddle.Tensor | dict[str, paddle.Tensor]:
        features = self.forward_features(x)
        if not self.training:
            return features
        return {"features": features, "logits": self.head(features, label)}

    def re_parameterize(self) -> int:
        """Fuse re-parameterisable blocks in place for export; returns how many were fused."""
        fused = 0
        for layer in self.sublayers():
            if layer is not self and hasattr(layer, "re_parameterize"):
                fused += int(bool(layer.re_parameterize()))
        return fused
