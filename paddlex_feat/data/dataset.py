"""A generic image dataset over list entries: decode with cv2 (BGR -> RGB), then a transform."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import paddle

from ..utils.errors import DatasetError
from ..utils.image import read_bgr
from .lists import ListEntry


def decode_rgb(path: str) -> np.ndarray | None:
    """An image file as RGB uint8 HWC, or None when it is missing, empty or not an image."""
    image, _ = read_bgr(path)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ImageListDataset(paddle.io.Dataset):
    """Yields ``(image CHW float32, label int64, index)`` for each entry, in list order."""

    def __init__(
        self,
        entries: Sequence[ListEntry],
        root: str | os.PathLike,
        transform: Callable[[np.ndarray], np.ndarray],
        list_name: str = "list",
    ) -> None:
        super().__init__()
        self.entries = list(entries)
        self.root = os.fspath(root)
        self.transform = transform
        self.list_name = list_name  # for error messages: "{list_name}:{lineno}"

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.int64, np.int64]:
        entry = self.entries[index]
        path = os.path.join(self.root, entry.path)
        image = decode_rgb(path)
        if image is None:
            raise DatasetError(
                f"{self.list_name}:{entry.lineno}: cannot read image {path} (missing, empty or not "
                "an image). Fix or remove that line; -o Global.mode=check_dataset lists every such line."
            )
        return self.transform(image), np.int64(entry.label), np.int64(index)
