"""Loader builders check what they need from the config, for any project."""
import numpy as np
import pytest
from fastreid.config import get_cfg

from fastreid_ext import add_ext_config
from fastreid_ext.config_check import ConfigError
from fastreid_ext.data import ImageListDataset, Sample, build_two_modality_train_loader


def test_two_modality_loader_refuses_a_batch_that_is_not_p_identities_times_k_times_two_modalities():
    cfg = add_ext_config(get_cfg())  # no project's keys: the rule is the loader's own
    cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCE = 60, 8
    samples = [Sample.for_training(f"{i}.jpg", 1, i % 2) for i in range(8)]
    dataset = ImageListDataset(samples, transforms=None)
    with pytest.raises(ConfigError, match=r"SOLVER.IMS_PER_BATCH = 60: must be a multiple of 2 x "
                                          r"DATALOADER.NUM_INSTANCE = 16"):
        build_two_modality_train_loader(cfg, dataset, np.zeros(4, int), np.zeros(4, int))
    cfg.SOLVER.IMS_PER_BATCH = 64
    loader = build_two_modality_train_loader(cfg, dataset, np.zeros(4, int), np.zeros(4, int))
    assert loader.batch_sampler.batch_size == 64
