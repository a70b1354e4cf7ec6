"""paddlex_feat: image feature (embedding) models on PaddlePaddle, with PaddleX's workflow."""

__version__ = "0.1.0"
