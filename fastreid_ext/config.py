"""Config keys that fastreid_ext adds to fastreid's defaults."""
import os

from fastreid.config import CfgNode as CN


def add_ext_config(cfg: CN) -> CN:
    """Add the toolkit's keys to a fastreid config (in place) and return it."""
    cfg.SEED = -1  # global seed for sampling, clustering and evaluation trials; < 0: random
    # Directory holding the data sets (SYSU-MM01/, RegDB/, ...); fastreid reads the same from
    # the FASTREID_DATASETS environment variable.
    cfg.DATASETS.ROOT = os.getenv("FASTREID_DATASETS", "datasets")

    cfg.TRAINER = CN()
    cfg.TRAINER.NAME = "DefaultTrainer"  # a name in fastreid_ext.engine.TRAINER_REGISTRY
    return cfg
