"""Data sets, loaders and the evaluator of a cross-modality data set, built from the config."""
import logging
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from fastreid.config import CfgNode
from fastreid.data.datasets import DATASET_REGISTRY
from torch.utils.data import DataLoader

from ..evaluation import CrossModalityEvaluator
from .common import ImageListDataset, collate
from .datasets.bases import CrossModalityDataset, Sample
from .samplers import CrossModalityIdentitySampler
from .transforms import build_modality_transforms

logger = logging.getLogger(__name__)


def build_cross_modality_dataset(cfg: CfgNode, name: str) -> CrossModalityDataset:
    """Instantiate the registered data set ``name`` under ``DATASETS.ROOT``."""
    try:
        dataset_class = DATASET_REGISTRY.get(name)
    except KeyError as err:
        raise KeyError(f"data set {name!r} (DATASETS.NAMES / DATASETS.TESTS) is not registered; "
                       f"cross-modality ones: SYSUMM01, SYSUMM01Indoor, RegDB, RegDBThermal2Visible, "
                       f"LLCM, LLCMVisible2Infrared") from err
    if not issubclass(dataset_class, CrossModalityDataset):
        raise TypeError(f"data set {name!r} is not a visible-infrared data set")
    return dataset_class(root=cfg.DATASETS.ROOT, trial=cfg.DATASETS.REGDB.TRIAL)


def build_cross_modality_train_split(cfg: CfgNode) -> Tuple[CrossModalityDataset, List[Callable]]:
    """(data set, training transforms of each modality) of ``DATASETS.NAMES[0]``, the one data
    set a cross-modality trainer trains on; its training split is summarised on rank 0."""
    from fastreid.utils import comm

    if len(cfg.DATASETS.NAMES) != 1:
        raise ValueError(f"cross-modality training uses one data set, got DATASETS.NAMES={cfg.DATASETS.NAMES}")
    dataset = build_cross_modality_dataset(cfg, cfg.DATASETS.NAMES[0])
    if comm.is_main_process():
        dataset.show_train()
    return dataset, [build_modality_transforms(cfg, m, is_train=True) for m in (0, 1)]


def build_test_transforms(cfg: CfgNode):
    return build_modality_transforms(cfg, 0, is_train=False)


def build_inference_loader(cfg: CfgNode, samples: Sequence[Sample], batch_size: Optional[int] = None,
                           num_workers: Optional[int] = None) -> DataLoader:
    """Loader over ``samples`` in order, with test-time transforms, for feature extraction."""
    dataset = ImageListDataset(samples, build_test_transforms(cfg), on_corrupt=cfg.DATASETS.ON_CORRUPT_IMAGE)
    return DataLoader(dataset, batch_size=batch_size or cfg.TEST.IMS_PER_BATCH, shuffle=False,
                      num_workers=cfg.DATALOADER.NUM_WORKERS if num_workers is None else num_workers,
                      collate_fn=collate, pin_memory=torch.cuda.is_available())


def build_cross_modality_evaluator(cfg: CfgNode, dataset_name: str) -> Tuple[DataLoader, CrossModalityEvaluator]:
    """(test loader, evaluator) for ``dataset_name``: the shape of ``DefaultTrainer.build_evaluator``.

    The loader covers this rank's share of ``query + gallery candidates``; the evaluator
    gathers every rank's features before running the protocol's trials.
    """
    from fastreid.data.samplers import InferenceSampler
    from fastreid.utils import comm

    dataset = build_cross_modality_dataset(cfg, dataset_name)
    if comm.is_main_process():
        dataset.show_test()
    test_set = ImageListDataset(dataset.query + dataset.gallery, build_test_transforms(cfg))
    batch_size = max(1, cfg.TEST.IMS_PER_BATCH // comm.get_world_size())
    sampler = torch.utils.data.BatchSampler(InferenceSampler(len(test_set)), batch_size, False)
    loader = DataLoader(test_set, batch_sampler=sampler, num_workers=cfg.DATALOADER.NUM_WORKERS,
                        collate_fn=collate, pin_memory=torch.cuda.is_available())
    xm = cfg.TEST.CROSS_MODALITY
    evaluator = CrossModalityEvaluator(dataset.query, dataset.gallery, dataset.protocol,
                                       dataset.random_gallery, num_trials=xm.NUM_TRIALS,
                                       shots=xm.GALLERY_SHOTS, metric=cfg.TEST.METRIC, max_rank=xm.MAX_RANK)
    return loader, evaluator


def build_two_modality_train_loader(cfg: CfgNode, dataset: ImageListDataset, labels_visible: Sequence[int],
                                    labels_infrared: Sequence[int], seed: Optional[int] = None,
                                    shared_ids: bool = False) -> DataLoader:
    """Infinite training loader over ``dataset`` (its visible samples first, then its infrared
    ones): each batch is P labels x K images from each modality, ``K = DATALOADER.NUM_INSTANCE``
    and ``P = SOLVER.IMS_PER_BATCH / (2 K world_size)``, the K images from different cameras
    with ``DATALOADER.CAMERA_AWARE``; the loader's ``batch_sampler`` takes new labels with
    ``set_labels``. Every rank draws the same global batch from one stream (``seed``, by default
    ``SEED``, or a random one broadcast from rank 0 when it is negative) and takes its slice, each
    image with its augmentation seed (:class:`~fastreid_ext.data.samplers.SeededIndex`): the
    number of processes does not change the images seen nor their augmentation. With
    ``shared_ids`` the P identities are the same in both modalities (labels that name one
    identity in both)."""
    from fastreid.utils import comm

    from ..config_check import ConfigError

    num_instances, batch, world = cfg.DATALOADER.NUM_INSTANCE, cfg.SOLVER.IMS_PER_BATCH, comm.get_world_size()
    if batch % (2 * num_instances * world):
        per_process = f" x {world} processes" if world > 1 else ""
        raise ConfigError(f"SOLVER.IMS_PER_BATCH = {batch}: must be a multiple of 2 x DATALOADER.NUM_INSTANCE"
                          f"{per_process} = {2 * num_instances * world} (P identities x K images x 2 modalities"
                          f"{per_process})")
    num_ids = batch // (2 * num_instances)  # of the global batch
    if seed is None:
        seed = cfg.SEED if cfg.SEED >= 0 else comm.all_gather(int(np.random.SeedSequence().entropy % 2 ** 31))[0]
    cameras = [sample.camid for sample in dataset.samples] if cfg.DATALOADER.CAMERA_AWARE else None
    sampler = CrossModalityIdentitySampler(labels_visible, labels_infrared, num_ids, num_instances, seed=seed,
                                           cameras=cameras, shared_ids=shared_ids, rank=comm.get_rank(),
                                           world_size=world)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.DATALOADER.NUM_WORKERS,
                      collate_fn=collate, pin_memory=torch.cuda.is_available())
