"""The two-modality training set whose pseudo labels the loop replaces each epoch."""
from typing import Sequence

import numpy as np

from .common import ImageListDataset
from .datasets.bases import Sample


class PseudoLabelledTrainSet(ImageListDataset):
    """Visible samples, then infrared samples. Items carry their ``index``; the model maps it
    to the current pseudo label, so labels changed between epochs reach data-loader workers
    without rebuilding them. ``len()`` is one epoch of ``epoch_length`` images (fastreid
    derives its iterations per epoch from it)."""

    def __init__(self, visible: Sequence[Sample], infrared: Sequence[Sample], transforms, epoch_length: int = 0,
                 on_corrupt: str = "raise"):
        super().__init__(list(visible) + list(infrared), transforms, labels=[-1] * (len(visible) + len(infrared)),
                         on_corrupt=on_corrupt)
        self.num_visible = len(visible)
        self.epoch_length = epoch_length or len(self.samples)

    def __len__(self) -> int:
        return self.epoch_length

    @property
    def num_classes(self) -> int:
        """Read by fastreid's DefaultTrainer; pseudo-label counts change every epoch, so 0."""
        return 0

    @property
    def has_diagnostic_ids(self) -> bool:
        return all(s.true_pid >= 0 for s in self.samples)

    def diagnostic_ids(self, modality: int) -> np.ndarray:
        part = self.samples[: self.num_visible] if modality == 0 else self.samples[self.num_visible:]
        return np.asarray([s.true_pid for s in part])
