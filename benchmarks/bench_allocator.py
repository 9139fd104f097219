#!/usr/bin/env python3
"""glibc's default allocator against ``KEEP_FREED_MEMORY`` (freed memory kept for reuse), same
network, inputs and seed, each in a fresh process, measured in the same run.

    python benchmarks/bench_allocator.py [--config-file configs/SynVI/imagenet/miot.yml] [--steps 5]

The network is the config's backbone (random weights), at the config's training batch and input
size: ``--steps`` training steps (forward, backward, Adam) and as many extraction batches of the
loop's size (``MIOT.EXTRACT_BATCH``, inference mode), after one of each to warm up. Prints, per
policy, seconds per step and per batch, the minor page faults per step and batch, the peak
resident size and a digest of the last outputs (equal digests: the policy changes no number),
then, last, the speed-up of a training step as ``N.Nx``.
"""
import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time

import torch

import fastreid_ext  # noqa: F401  (first)
from fastreid.modeling.backbones import build_backbone
from fastreid_ext.engine import setup_config
from fastreid_ext.utils import keep_freed_memory

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(config_file: str, steps: int) -> dict:
    """Time the config's backbone in this process: training steps, then extraction batches."""
    cfg = setup_config(config_file, ["MODEL.BACKBONE.PRETRAIN", "False"])
    torch.manual_seed(0)
    net = build_backbone(cfg)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.SOLVER.BASE_LR)
    height, width = cfg.INPUT.SIZE_TRAIN
    images = torch.randn(cfg.SOLVER.IMS_PER_BATCH, 3, height, width)
    batch = torch.randn(cfg.MIOT.EXTRACT_BATCH, 3, *cfg.INPUT.SIZE_TEST)

    def train_step() -> torch.Tensor:
        optimizer.zero_grad()
        loss = net(images).square().mean()
        loss.backward()
        optimizer.step()
        return loss.detach()

    def extract() -> torch.Tensor:
        with torch.inference_mode():
            return net(batch)

    result = {}
    for name, training, fn in (("train", True, train_step), ("extract", False, extract)):
        net.train(training)
        fn()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        for _ in range(steps):
            out = fn()
        result[f"{name}_s"] = (time.perf_counter() - start) / steps
        result[f"{name}_faults"] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps
        result[f"{name}_digest"] = hashlib.sha1(out.numpy().tobytes()).hexdigest()[:12]
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default=os.path.join(REPO, "configs", "SynVI", "imagenet", "miot.yml"))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--policy", choices=["default", "keep"], help="measure one policy in this process")
    args = parser.parse_args()
    if args.policy:
        if args.policy == "keep" and not keep_freed_memory():
            sys.exit("keep_freed_memory() changes nothing here: the C library is not glibc")
        print(json.dumps(measure(args.config_file, args.steps)))
        return
    runs = {}
    for policy in ("default", "keep"):
        command = [sys.executable, __file__, "--config-file", args.config_file, "--steps", str(args.steps),
                   "--policy", policy]
        runs[policy] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    cfg = setup_config(args.config_file, ["MODEL.BACKBONE.PRETRAIN", "False"])
    print(f"{os.path.relpath(args.config_file, REPO)}: {cfg.MODEL.BACKBONE.NAME} {cfg.MODEL.BACKBONE.DEPTH}, "
          f"{torch.get_num_threads()} threads, mean of {args.steps} after one")
    print("| allocator | train step, s | faults / step | extraction batch, s | faults / batch | peak, MB "
          "| digests (train / extract) |")
    print("|---|---|---|---|---|---|---|")
    for policy, r in runs.items():
        print(f"| {'glibc default' if policy == 'default' else 'KEEP_FREED_MEMORY'} | {r['train_s']:.3f} | "
              f"{r['train_faults']:.0f} | {r['extract_s']:.3f} | {r['extract_faults']:.0f} | {r['peak_mb']:.0f} | "
              f"{r['train_digest']} / {r['extract_digest']} |")
    same = all(runs["default"][k] == runs["keep"][k] for k in ("train_digest", "extract_digest"))
    print(f"same outputs: {same}")
    print(f"speed-up of an extraction batch: {runs['default']['extract_s'] / runs['keep']['extract_s']:.1f}x")
    print(f"speed-up of a training step: {runs['default']['train_s'] / runs['keep']['train_s']:.1f}x")


if __name__ == "__main__":
    main()
