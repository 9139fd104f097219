#!/usr/bin/env python3
"""fastreid's standard training / evaluation entry point for this toolkit.

    python tools/train_net.py --config-file configs/SynVI/miot.yml [--eval-only] [--resume] [KEY VALUE ...]

The trainer class comes from ``TRAINER.NAME`` (fastreid's ``DefaultTrainer`` by default,
``MIOTTrainer`` for the MIOT configs), so fastreid's stock baselines train here too.
"""
import fastreid_ext  # noqa: F401  (first: makes fastreid importable on this stack)
import miot
from fastreid.engine import default_argument_parser, default_setup, launch
from fastreid.utils import comm
from fastreid.utils.logger import setup_logger
from fastreid_ext.compat import set_dataset_root
from fastreid_ext.engine import build_trainer_class, load_trained_model, seed_everything, setup_config


def setup(args):
    """get_cfg + add_*_config, merge file and opts (checked), freeze, default_setup."""
    cfg = setup_config(args.config_file, args.opts, [miot.add_miot_config], eval_only=args.eval_only)
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
        return trainer_class.test(cfg, load_trained_model(cfg))
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
