#!/usr/bin/env python3
"""fastreid's standard training / evaluation entry point for this toolkit.

    python tools/train_net.py --config-file configs/SynVI/miot.yml [--eval-only] [--resume] [KEY VALUE ...]

The trainer class comes from ``TRAINER.NAME`` (fastreid's ``DefaultTrainer`` by default,
``MIOTTrainer`` for the MIOT configs), so fastreid's stock baselines train here too.
"""
import fastreid_ext  # noqa: F401  (first: makes fastreid importable on this stack)
import miot
from fastreid.config import get_cfg
from fastreid.engine import default_argument_parser, default_setup, launch
from fastreid.utils import comm
from fastreid.utils.checkpoint import Checkpointer
from fastreid.utils.logger import setup_logger
from fastreid_ext import add_ext_config
from fastreid_ext.compat import set_dataset_root
from fastreid_ext.config_check import merge_checked, validate_config
from fastreid_ext.engine import build_trainer_class, resolve_device, seed_everything


def setup(args):
    """get_cfg -> add_*_config -> merge file and opts (checked) -> freeze -> default_setup."""
    cfg = get_cfg()
    add_ext_config(cfg)
    miot.add_miot_config(cfg)
    merge_checked(cfg, args.config_file, args.opts)
    validate_config(cfg, eval_only=args.eval_only)
    resolve_device(cfg)
    cfg.freeze()
    default_setup(cfg, args)
    for name in ("fastreid_ext", "miot"):
        setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name=name)
    seed_everything(cfg.SEED)
    set_dataset_root(cfg.DATASETS.ROOT)
    return cfg


def main(args):
    cfg = setup(args)
    trainer_class = build_trainer_class(cfg)
    if args.eval_only:
        cfg.defrost()
        cfg.MODEL.BACKBONE.PRETRAIN = False
        model = trainer_class.build_model(cfg)
        Checkpointer(model).load(cfg.MODEL.WEIGHTS)
        return trainer_class.test(cfg, model)

    trainer = trainer_class(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
