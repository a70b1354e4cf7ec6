"""P x K batch sampler for metric learning: P classes a batch, K images each.

Deterministic: batch order depends only on (seed, epoch, rank), so a resumed run sees the
same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np

from ..utils.errors import ConfigError
from ..utils.logger import logger

IMAGES_PER_CLASS = 4  # K, as in PaddleClas's PKSampler config for PP-ShiTuV2


class PKBatchSampler:
    """Yields index lists of P distinct classes x K images (with replacement when a class is small)."""

    def __init__(
        self,
        labels: Sequence[int],
        batch_size: int,
        images_per_class: int = IMAGES_PER_CLASS,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < images_per_class:
            raise ConfigError(
                f"Train.batch_size={batch_size} is smaller than the {images_per_class} images per class "
                f"that the P x K sampler draws. Use -o Train.batch_size={images_per_class * 2} or more."
            )
        self.by_class: dict[int, list[int]] = defaultdict(list)
        for index, label in enumerate(labels):
            self.by_class[int(label)].append(index)
        self.classes = np.array(sorted(self.by_class))
        self.k = images_per_class
        wanted_p = batch_size // images_per_class
        if batch_size % images_per_class:
            logger.info(
                f"P x K sampler: batch size {batch_size} is not a multiple of K={images_per_class}; "
                f"using {wanted_p * images_per_class} images a batch."
            )
        self.p = min(wanted_p, len(self.classes))
        if self.p < wanted_p:
            # The reference dies here; fewer classes a batch still trains correctly.
            logger.info(
                f"P x K sampler: only {len(self.classes)} classes for {wanted_p} classes a batch; "
                f"shrinking P to {self.p} (batch of {self.p * self.k} images)."
            )
        self.num_samples = len(labels)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    @property
    def batch_size(self) -> int:
        """Images in every batch."""
        return self.p * self.k

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches ``__iter__`` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return max(1, self.num_samples // (self.batch_size * self.world_size))

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        for _ in range(len(self)):
            batch: list[int] = []
            for label in rng.choice(self.classes, size=self.p, replace=False):
                members = self.by_class[int(label)]
                picks = rng.choice(len(members), size=self.k, replace=len(members) < self.k)
                batch.extend(members[i] for i in picks)
            yield batch
