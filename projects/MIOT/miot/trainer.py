"""MIOTTrainer: fastreid's DefaultTrainer with MIOT's loader, evaluator and loop hook."""
import logging

import numpy as np
from fastreid.engine import DefaultTrainer
from torch.utils.data import DataLoader

from fastreid_ext.data import (build_cross_modality_evaluator, build_cross_modality_train_split,
                               build_two_modality_train_loader)
from fastreid_ext.engine import TRAINER_REGISTRY

from .data import PseudoLabelledTrainSet
from .hooks import MIOTLoopHook

logger = logging.getLogger(__name__)


@TRAINER_REGISTRY.register()
class MIOTTrainer(DefaultTrainer):
    """Trains MIOT with fastreid's loop; only ``build_*`` methods differ from DefaultTrainer."""

    @classmethod
    def build_train_loader(cls, cfg) -> DataLoader:
        """Both modalities of ``DATASETS.NAMES[0]``, P pseudo identities x K images from each per
        batch. Until the loop's first clustering every image is its own label."""
        dataset, transforms = build_cross_modality_train_split(cfg)
        epoch_length = cfg.MIOT.ITERS * cfg.SOLVER.IMS_PER_BATCH
        train_set = PseudoLabelledTrainSet(dataset.train_visible, dataset.train_infrared, transforms, epoch_length,
                                           on_corrupt=cfg.DATASETS.ON_CORRUPT_IMAGE)
        return build_two_modality_train_loader(cfg, train_set, np.arange(len(dataset.train_visible)),
                                               np.arange(len(dataset.train_infrared)))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_dir=None):
        return build_cross_modality_evaluator(cfg, dataset_name)

    def build_hooks(self):
        """fastreid's default hooks, preceded by the MIOT loop (which is also checkpointed)."""
        loop = MIOTLoopHook(self.cfg, self.data_loader.dataset, self.data_loader.batch_sampler)
        self.checkpointer.checkpointables["miot"] = loop
        return [loop] + super().build_hooks()
