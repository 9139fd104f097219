"""Trainer registry and the device/seed set-up that ``tools/train_net.py`` performs."""
import logging
import random
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from fastreid.config import CfgNode, get_cfg
from fastreid.engine import DefaultTrainer
from fastreid.utils.registry import Registry

from ..compat import cuda_usable

logger = logging.getLogger(__name__)

TRAINER_REGISTRY = Registry("TRAINER")
TRAINER_REGISTRY.__doc__ = """Trainer classes selectable with ``TRAINER.NAME``.

A project registers its ``DefaultTrainer`` subclass here so that ``tools/train_net.py``
trains it without project-specific code."""
TRAINER_REGISTRY.register(DefaultTrainer)


def build_trainer_class(cfg: CfgNode) -> type:
    """The trainer class named by ``cfg.TRAINER.NAME``."""
    try:
        return TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    except KeyError as err:
        raise KeyError(f"TRAINER.NAME={cfg.TRAINER.NAME!r} is not a registered trainer; "
                       f"known: {sorted(TRAINER_REGISTRY._obj_map)}") from err


def resolve_device(cfg: CfgNode) -> CfgNode:
    """Fall back to ``MODEL.DEVICE cpu`` (with a warning) when CUDA is asked for but absent."""
    if str(cfg.MODEL.DEVICE).startswith("cuda") and not cuda_usable():
        logger.warning("MODEL.DEVICE=%s but CUDA is not available: using cpu.", cfg.MODEL.DEVICE)
        frozen = cfg.is_frozen()
        cfg.defrost()
        cfg.MODEL.DEVICE = "cpu"
        if frozen:
            cfg.freeze()
    return cfg


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices); ``seed < 0`` leaves them random."""
    if seed < 0:
        return
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_config(config_file: str, opts: Sequence[str] = (), add_config_fns: Iterable[Callable] = (),
                 eval_only: bool = False) -> CfgNode:
    """fastreid defaults + our keys + each project's ``add_*_config``, merged with the file
    and the overrides (checked), validated, device resolved, frozen."""
    from ..config import add_ext_config
    from ..config_check import merge_checked, validate_config

    cfg = get_cfg()
    add_ext_config(cfg)
    for add_config in add_config_fns:
        add_config(cfg)
    merge_checked(cfg, config_file, opts)
    validate_config(cfg, eval_only=eval_only)
    resolve_device(cfg)
    cfg.freeze()
    return cfg


def load_trained_model(cfg: CfgNode) -> torch.nn.Module:
    """The model of ``cfg`` with ``MODEL.WEIGHTS`` loaded, in eval mode (no pretraining load)."""
    from fastreid.modeling import build_model
    from fastreid.utils.checkpoint import Checkpointer

    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.BACKBONE.PRETRAIN = False
    model = build_model(cfg)
    Checkpointer(model).load(cfg.MODEL.WEIGHTS)
    return model.eval()
