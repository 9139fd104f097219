#!/usr/bin/env python3
"""The demo behind ``make demo``: generate SynVI in SYSU-MM01's layout (unless there), train MIOT
on it on the CPU, evaluate with the SYSU-MM01 all-search protocol and print the metrics."""
import argparse
import os
import time

import fastreid_ext  # noqa: F401  (first)
from fastreid.engine import default_argument_parser
from fastreid_ext.data.synvi import ensure
from fastreid_ext.engine import train_or_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default="datasets/synvi-demo")
    parser.add_argument("--output", default="logs/demo")
    parser.add_argument("--num-ids", type=int, default=100)
    parser.add_argument("--config-file", default=os.path.join(REPO, "configs", "SynVI", "miot.yml"))
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="extra KEY VALUE config overrides")
    args = parser.parse_args()

    start = time.time()
    summary = ensure(args.data_root, "sysu", num_ids=args.num_ids, seed=0)
    print(f"SynVI in {args.data_root}/SYSU-MM01: {summary['images']} images, "
          f"{summary['train_ids']} training / {summary['test_ids']} test identities", flush=True)
    train_args = default_argument_parser().parse_args(
        ["--config-file", args.config_file, "DATASETS.ROOT", args.data_root, "OUTPUT_DIR", args.output, *args.opts])
    results = train_or_evaluate(train_args)
    print("\nMIOT on SynVI, cross-modality (infrared query -> visible gallery), SYSU-MM01 all-search protocol, "
          "mean over the random-gallery trials:")
    print(f"  Rank-1 {results['Rank-1']:.1f}%   Rank-10 {results['Rank-10']:.1f}%   mAP {results['mAP']:.1f}%   "
          f"mINP {results['mINP']:.1f}%")
    print(f"  {time.time() - start:.0f} s in all; checkpoints, metrics.json and the log are in {args.output}/")


if __name__ == "__main__":
    main()
