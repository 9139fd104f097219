#!/usr/bin/env python3
"""The demo behind ``make demo``: generate SynVI in SYSU-MM01's layout (unless there), train MIOT
on it on the CPU, evaluate with the SYSU-MM01 all-search protocol and print the metrics."""
import argparse
import json
import os
import time
from typing import Dict

import fastreid_ext  # noqa: F401  (first)
from fastreid.engine import default_argument_parser
from fastreid_ext.data.synvi import ensure
from fastreid_ext.engine import train_or_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = ("extract", "cluster", "match", "train")  # the loop's per-epoch split (metrics.json's time_*)


def metrics_lines(metrics_path: str) -> int:
    """Records already in a metrics.json (fastreid appends a rerun's records to them)."""
    if not os.path.exists(metrics_path):
        return 0
    with open(metrics_path) as f:
        return sum(1 for _ in f)


def time_split(metrics_path: str, skip: int = 0) -> Dict[str, float]:
    """Seconds of each phase summed over the epochs of a run's metrics.json, after its first
    ``skip`` records (an earlier run's)."""
    totals = dict.fromkeys(PHASES, 0.0)
    with open(metrics_path) as f:
        for line in list(f)[skip:]:
            record = json.loads(line)
            for phase in PHASES:
                totals[phase] += record.get(f"time_{phase}", 0.0)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default="datasets/synvi-demo")
    parser.add_argument("--output", default="logs/demo")
    parser.add_argument("--num-ids", type=int, default=100)
    parser.add_argument("--config-file", default=os.path.join(REPO, "configs", "SynVI", "miot.yml"))
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="extra KEY VALUE config overrides")
    args = parser.parse_args()

    start = time.perf_counter()
    summary = ensure(args.data_root, "sysu", num_ids=args.num_ids, seed=0)
    print(f"SynVI in {args.data_root}/SYSU-MM01: {summary['images']} images, "
          f"{summary['train_ids']} training / {summary['test_ids']} test identities", flush=True)
    train_args = default_argument_parser().parse_args(
        ["--config-file", args.config_file, "DATASETS.ROOT", args.data_root, "OUTPUT_DIR", args.output, *args.opts])
    metrics_path = os.path.join(args.output, "metrics.json")
    earlier = metrics_lines(metrics_path)
    train_start = time.perf_counter()
    results = train_or_evaluate(train_args)
    training = time.perf_counter() - train_start
    print("\nMIOT on SynVI, cross-modality (infrared query -> visible gallery), SYSU-MM01 all-search protocol, "
          "mean over the random-gallery trials:")
    print(f"  Rank-1 {results['Rank-1']:.1f}%   Rank-10 {results['Rank-10']:.1f}%   mAP {results['mAP']:.1f}%   "
          f"mINP {results['mINP']:.1f}%")
    split = time_split(metrics_path, skip=earlier)
    rest = training - sum(split.values())
    print("  training " + ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in split.items())
          + f", set-up, evaluation and checkpoints {rest:.0f} s")
    print(f"  {time.perf_counter() - start:.0f} s in all (wall clock); checkpoints, metrics.json and the log are in "
          f"{args.output}/")


if __name__ == "__main__":
    main()
