"""Supervised cross-modality baselines: fastreid's stock meta-architectures (Baseline: BoT /
AGW / SBS heads and losses) trained on the true identities of a visible-infrared training
split, evaluated with the data set's cross-modality protocol. The upper bound an unsupervised
method is compared with, and a source model for pretraining."""
from typing import Sequence

import numpy as np
from fastreid.engine import DefaultTrainer
from torch.utils.data import DataLoader

from ..data import (ImageListDataset, Sample, build_cross_modality_evaluator, build_cross_modality_train_split,
                    build_two_modality_train_loader)
from .defaults import TRAINER_REGISTRY
from .distributed import GlobalBatchNormMixin


class LabelledTrainSet(ImageListDataset):
    """Both modalities' training images (visible first) labelled with their true identity,
    relabelled 0..C-1; an identity has the same label in both modalities."""

    def __init__(self, visible: Sequence[Sample], infrared: Sequence[Sample], transforms, on_corrupt: str = "raise"):
        samples = list(visible) + list(infrared)
        unknown = [s.img_path for s in samples if s.true_pid < 0]
        if unknown:
            raise ValueError(f"{len(unknown)} training images have no identity (e.g. {unknown[:2]}): the data set "
                             f"reader must keep them as Sample.true_pid for supervised training")
        identities = sorted({s.true_pid for s in samples})
        relabel = {pid: label for label, pid in enumerate(identities)}
        super().__init__(samples, transforms, labels=[relabel[s.true_pid] for s in samples], on_corrupt=on_corrupt)
        self.num_visible = len(visible)
        self._num_classes = len(identities)

    @property
    def num_classes(self) -> int:
        """Read by fastreid's DefaultTrainer to size the classifier."""
        return self._num_classes


@TRAINER_REGISTRY.register()
class CrossModalitySupervisedTrainer(GlobalBatchNormMixin, DefaultTrainer):
    """fastreid's DefaultTrainer on ``DATASETS.NAMES[0]``'s true training identities: P identities
    x K images from each modality per batch (the same identities in both), the modality
    transforms of :mod:`fastreid_ext.data`; evaluation (periodic, final and ``--eval-only``)
    with the cross-modality protocol of each ``DATASETS.TESTS`` entry."""

    @classmethod
    def build_train_loader(cls, cfg) -> DataLoader:
        dataset, transforms = build_cross_modality_train_split(cfg)
        train_set = LabelledTrainSet(dataset.train_visible, dataset.train_infrared, transforms,
                                     on_corrupt=cfg.DATASETS.ON_CORRUPT_IMAGE)
        labels = np.asarray(train_set.labels)
        return build_two_modality_train_loader(cfg, train_set, labels[: train_set.num_visible],
                                               labels[train_set.num_visible:], shared_ids=True)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_dir=None):
        return build_cross_modality_evaluator(cfg, dataset_name)
