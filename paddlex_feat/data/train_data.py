"""The training dataset: relabelled list entries, decoded with cv2, augmented per (seed, epoch, index).

Augmentation randomness comes from a generator seeded by (seed, epoch, index), not from worker
state, so a run gives the same batches whatever the number of workers, and a resumed run the
same batches as an uninterrupted one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import paddle

from ..utils.errors import ConfigError, DatasetError
from .dataset import decode_rgb
from .lists import ListEntry


def build_label_dict(entries: Sequence[ListEntry]) -> dict[int, int]:
    """Map each original label to 0..N-1, in ascending label order."""
    return {label: i for i, label in enumerate(sorted({e.label for e in entries}))}


def check_num_classes(num_classes: int | None, entries: Sequence[ListEntry], relabel: bool) -> int:
    """The class count to build the head with; a mismatch with the list is a clear error."""
    labels = {e.label for e in entries}
    if relabel:
        if num_classes is not None and num_classes != len(labels):
            raise ConfigError(
                f"Train.num_classes={num_classes}, but train.txt has {len(labels)} distinct labels. "
                f"Set -o Train.num_classes={len(labels)}."
            )
        return len(labels)
    bad = sorted(label for label in labels if label < 0 or (num_classes is not None and label >= num_classes))
    if num_classes is None:
        raise ConfigError("Train.relabel=False needs Train.num_classes: set it to the largest label + 1.")
    if bad:
        first = next(e for e in entries if e.label in bad)
        raise DatasetError(
            f"train.txt:{first.lineno}: label {first.label} is outside 0..{num_classes - 1} "
            f"(Train.num_classes={num_classes}, Train.relabel=False; {len(bad)} such label(s)). "
            "Use -o Train.relabel=True, or raise Train.num_classes."
        )
    return num_classes


class TrainDataset(paddle.io.Dataset):
    """Yields (image CHW float32, label int64, ok flag, index); an unreadable image is replaced by
    another image of its class and flagged, so training goes on and the caller can count it."""

    def __init__(
        self,
        entries: Sequence[ListEntry],
        root: str,
        label_dict: dict[int, int],
        transform: Callable[[np.ndarray, np.random.Generator], np.ndarray],
        seed: int,
    ) -> None:
        super().__init__()
        self.paths = [os.path.join(root, e.path) for e in entries]
        self.labels = [label_dict[e.label] for e in entries]
        self.transform, self.seed, self.epoch = transform, seed, 0
        self.by_class: dict[int, list[int]] = {}
        for i, label in enumerate(self.labels):
            self.by_class.setdefault(label, []).append(i)

    def set_epoch(self, epoch: int) -> None:
        """Augmentations of epoch ``epoch`` (set before creating the loader iterator)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image, ok = decode_rgb(self.paths[index]), 1
        if image is None:
            ok = 0
            for other in self.by_class[self.labels[index]]:
                image = decode_rgb(self.paths[other]) if other != index else None
                if image is not None:
                    break
        if image is None:  # the whole class is unreadable: a blank image keeps the batch shape
            image = np.zeros((8, 8, 3), np.uint8)
        return self.transform(image, rng), np.int64(self.labels[index]), np.int64(ok), np.int64(index)
