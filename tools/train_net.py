#!/usr/bin/env python3
"""fastreid's standard training / evaluation entry point for this toolkit.

    python tools/train_net.py --config-file configs/SynVI/miot.yml [--eval-only] [--resume] [KEY VALUE ...]
    python tools/train_net.py ... --num-gpus 4 [--num-machines 2 --machine-rank 0 --dist-url tcp://HOST:PORT]
    torchrun --nproc-per-node 4 [--nnodes 2 --node-rank 0 --master-addr HOST] tools/train_net.py ...

The config keys of every installed project (``fastreid_ext.projects`` entry points, e.g.
MIOT) are available; the trainer class comes from ``TRAINER.NAME`` (fastreid's
``DefaultTrainer`` by default, ``MIOTTrainer`` for the MIOT configs), so fastreid's stock
baselines train here too.
"""
import fastreid_ext  # noqa: F401  (first: makes fastreid importable on this stack)
from fastreid.engine import default_argument_parser
from fastreid_ext.engine import add_launch_arguments, launch, train_or_evaluate

if __name__ == "__main__":
    args = add_launch_arguments(default_argument_parser()).parse_args()
    print("Command Line Args:", args)
    launch(train_or_evaluate, (args,), num_gpus=args.num_gpus, num_machines=args.num_machines,
           machine_rank=args.machine_rank, dist_url=args.dist_url, timeout_minutes=args.dist_timeout)
