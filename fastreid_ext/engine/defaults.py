"""Trainer registry and the set-up that ``tools/train_net.py`` performs (config, device, seed, logs)."""
import logging
import random
from argparse import Namespace
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from fastreid.config import CfgNode, get_cfg
from fastreid.engine import DefaultTrainer
from fastreid.utils.registry import Registry

from ..utils import cuda_usable, keep_freed_memory, registered_names
from .projects import Project, installed_projects

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
                       f"known: {registered_names(TRAINER_REGISTRY)}") from err


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


def setup_config(config_file: str, opts: Sequence[str] = (), projects: Optional[Sequence[Project]] = None,
                 eval_only: bool = False) -> CfgNode:
    """fastreid defaults + the toolkit's keys + each project's keys, merged with the file and
    the overrides (checked), validated with every project's checks, device resolved, frozen.

    Args:
        projects: the projects whose keys and checks apply; the installed ones by default.
    """
    from ..config import add_ext_config
    from ..config_check import merge_checked, validate_config

    projects = installed_projects() if projects is None else projects
    cfg = get_cfg()
    add_ext_config(cfg)
    for project in projects:
        project.add_config(cfg)
    merge_checked(cfg, config_file, opts)
    validate_config(cfg, eval_only=eval_only, project_checks=[p.config_checks for p in projects])
    resolve_device(cfg)
    cfg.freeze()
    return cfg


def setup(args: Namespace, projects: Optional[Sequence[Project]] = None) -> CfgNode:
    """What a fastreid ``train_net.py`` does before training, from its parsed arguments:
    :func:`setup_config`, fastreid's ``default_setup`` (output folder, config dump, logging),
    the projects' loggers, the seed, the data-set root and the allocator's policy
    (``KEEP_FREED_MEMORY``)."""
    from fastreid.engine import default_setup
    from fastreid.utils import comm
    from fastreid.utils.logger import setup_logger

    from ..compat import set_dataset_root

    projects = installed_projects() if projects is None else projects
    cfg = setup_config(args.config_file, args.opts, projects, eval_only=args.eval_only)
    default_setup(cfg, args)
    for name in ["fastreid_ext"] + [p.name for p in projects]:
        setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name=name)
    seed_everything(cfg.SEED)
    set_dataset_root(cfg.DATASETS.ROOT)
    apply_allocator_policy(cfg)
    return cfg


def apply_allocator_policy(cfg: CfgNode) -> bool:
    """``KEEP_FREED_MEMORY``: glibc's malloc keeps the memory this process frees for its next tensors
    (:func:`fastreid_ext.utils.keep_freed_memory`); returns whether it was applied."""
    if cfg.KEEP_FREED_MEMORY and keep_freed_memory():
        logger.info("KEEP_FREED_MEMORY: glibc's malloc keeps freed memory for reuse")
        return True
    return False


def build_trainer(config_file: str, opts: Sequence[str] = (), resume: bool = False, hooks: Sequence = ()):
    """The trainer ``tools/train_net.py`` would train, from a config file and ``KEY VALUE``
    overrides (a notebook's or a script's way in): :func:`setup`, the class of ``TRAINER.NAME``,
    ``hooks`` registered after its own, weights loaded (or the last checkpoint, ``resume``)."""
    from fastreid.engine import default_argument_parser

    cfg = setup(default_argument_parser().parse_args(["--config-file", config_file, *opts]))
    trainer = build_trainer_class(cfg)(cfg)
    trainer.register_hooks(list(hooks))
    trainer.resume_or_load(resume=resume)
    return trainer


def train_or_evaluate(args: Namespace) -> Dict:
    """The main function of ``tools/train_net.py``: set up, then evaluate ``MODEL.WEIGHTS``
    (``--eval-only``) or train (``--resume`` continues the last checkpoint) with the trainer of
    ``TRAINER.NAME``; returns the evaluation results."""
    cfg = setup(args)
    trainer_class = build_trainer_class(cfg)
    if args.eval_only:
        return trainer_class.test(cfg, load_trained_model(cfg))
    trainer = trainer_class(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


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
