"""PseudoLabelTrainer: fastreid's DefaultTrainer for clustering-based unsupervised cross-modality
methods. Training images of both modalities without labels, P pseudo identities x K images of
each modality per batch, the :class:`~fastreid_ext.engine.loop.PseudoLabelLoop` before fastreid's
hooks (and checkpointed), cross-modality evaluation, and a progress line whose ETA counts the
hooks. A method subclasses it and says which loop and settings it uses."""
import os

import numpy as np
from fastreid.engine import DefaultTrainer
from fastreid.utils.events import JSONWriter, TensorboardXWriter
from torch.utils.data import DataLoader

from ..data import (PseudoLabelledTrainSet, build_cross_modality_evaluator, build_cross_modality_train_split,
                    build_two_modality_train_loader)
from .distributed import GlobalBatchNormMixin
from .loop import LoopSettings, PseudoLabelLoop
from .progress import WallClockMetricPrinter


class PseudoLabelTrainer(GlobalBatchNormMixin, DefaultTrainer):
    """Subclasses implement :meth:`loop_settings` and :meth:`iterations_per_epoch` (from their
    config node) and set ``loop_class`` to their :class:`PseudoLabelLoop` subclass."""

    loop_class = PseudoLabelLoop
    loop_checkpoint_key = "loop"  # the loop's state in every checkpoint

    @classmethod
    def loop_settings(cls, cfg) -> LoopSettings:
        raise NotImplementedError(f"{cls.__name__} must say its loop's settings (loop_settings(cfg))")

    @classmethod
    def iterations_per_epoch(cls, cfg) -> int:
        """Training iterations between two clusterings (0: one pass over the training images)."""
        raise NotImplementedError(f"{cls.__name__} must say its iterations per epoch (iterations_per_epoch(cfg))")

    @classmethod
    def build_train_loader(cls, cfg) -> DataLoader:
        """Both modalities of ``DATASETS.NAMES[0]``, P pseudo identities x K images from each per
        batch. Until the loop's first clustering every image is its own label."""
        dataset, transforms = build_cross_modality_train_split(cfg)
        train_set = PseudoLabelledTrainSet(dataset.train_visible, dataset.train_infrared, transforms,
                                           cls.iterations_per_epoch(cfg) * cfg.SOLVER.IMS_PER_BATCH,
                                           on_corrupt=cfg.DATASETS.ON_CORRUPT_IMAGE)
        return build_two_modality_train_loader(cfg, train_set, np.arange(len(dataset.train_visible)),
                                               np.arange(len(dataset.train_infrared)))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_dir=None):
        return build_cross_modality_evaluator(cfg, dataset_name)

    def build_hooks(self):
        """The loop (also checkpointed, under ``loop_checkpoint_key``), then fastreid's default hooks."""
        self.loop = self.loop_class(self.cfg, self.loop_settings(self.cfg), self.data_loader.dataset,
                                    self.data_loader.batch_sampler)
        self.checkpointer.checkpointables[self.loop_checkpoint_key] = self.loop
        return [self.loop] + super().build_hooks()

    def build_writers(self):
        """fastreid's writers, with :class:`WallClockMetricPrinter` for its progress line."""
        self.progress_printer = WallClockMetricPrinter(self.max_iter)
        return [self.progress_printer, JSONWriter(os.path.join(self.cfg.OUTPUT_DIR, "metrics.json")),
                TensorboardXWriter(self.cfg.OUTPUT_DIR)]

    def before_train(self):
        if hasattr(self, "progress_printer"):  # rank 0 only builds writers
            self.progress_printer.start(self.start_iter)
        super().before_train()
