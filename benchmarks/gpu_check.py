#!/usr/bin/env python3
"""The first run on a GPU, in one script (``make gpu-check``; a few minutes, no network).

    python benchmarks/gpu_check.py [--out logs/gpu-check] [--knn-size 20000] [--cluster-size 34000]

1. the CUDA tests of the suite (``pytest -k "cuda or gpu"``);
2. 20 iterations of MIOT on a small SynVI with AMP on the GPU: every loss finite;
3. torch-CUDA kNN against the CPU (faiss) kNN on 20k 2048-d features: identical neighbours;
4. re-clustering 34k features (SYSU-MM01 size, 2048-d): kNN, Jaccard, DBSCAN phase times, on the GPU where
   there is one (GPU kNN, torch Jaccard; goal 2 s in all), its labels against the CPU (scipy) path;
5. ``bench_step.py``: seconds per iteration, MIOT vs Baseline, ResNet-50, 288x144, batch 64;
6. the demo (``tools/demo.py``, the CPU demo's config and seed) with ``MODEL.DEVICE cuda``: its metrics and
   wall clock, the loop's phase split (``--demo-timeout`` bounds it);
7. where two GPUs exist, the world-size equivalence tests (``tests/distributed/test_world_size.py``) with
   one and two NCCL processes on the GPUs; with one GPU it says so.

Prints one table. Without CUDA it runs what runs on the CPU (1, 4), says what it skipped, and
exits 0; a check that fails makes it exit 1.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch

import fastreid_ext  # noqa: F401  (first)
from fastreid.engine import HookBase
from fastreid_ext.cluster import dbscan_labels, exact_knn
from fastreid_ext.data.synvi import ensure
from fastreid_ext.engine import build_trainer
from fastreid_ext.testing import synthetic_reid_features
from fastreid_ext.utils import cuda_usable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIPPED = "skipped (no CUDA device)"


def cuda_tests(args) -> str:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-k", "cuda or gpu", os.path.join(REPO, "tests")],
                            capture_output=True, text=True, cwd=REPO)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-200:]
    if result.returncode not in (0, 5):  # 5: nothing collected
        raise RuntimeError(summary)
    return summary


class LossCheck(HookBase):
    """Every loss term of every step finite."""

    def __init__(self):
        self.steps = 0

    def after_step(self):
        latest = self.trainer.storage.latest()
        bad = {k: v for k, (v, _) in latest.items() if "loss" in k and not np.isfinite(v)}
        if bad:
            raise FloatingPointError(f"non-finite losses at step {self.steps}: {bad}")
        self.steps += 1


def amp_iterations(args) -> str:
    if not cuda_usable():
        return SKIPPED
    root = os.path.join(args.out, "synvi")
    ensure(root, "sysu", num_ids=30, seed=0)
    check = LossCheck()
    build_trainer(os.path.join(REPO, "configs", "SynVI", "miot.yml"),
                  ["DATASETS.ROOT", root, "OUTPUT_DIR", os.path.join(args.out, "amp"), "MODEL.DEVICE", "cuda",
                   "SOLVER.AMP.ENABLED", "True", "SOLVER.MAX_EPOCH", "2", "MIOT.ITERS", "10", "MIOT.WARMUP_RATIO",
                   "0.5", "TEST.EVAL_PERIOD", "2"], hooks=[check]).train()
    return f"{check.steps} AMP iterations, every loss finite (the second epoch with the cross terms)"


def knn_parity(args) -> str:
    if not cuda_usable():
        return SKIPPED
    features = synthetic_reid_features(args.knn_size)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    cpu_idx, _ = exact_knn(features, 30, "faiss")
    gpu_idx, _ = exact_knn(features, 30, "torch-cuda")
    differing = int((cpu_idx != gpu_idx).any(axis=1).sum())
    if differing:
        raise AssertionError(f"{differing} of {args.knn_size} rows differ between torch-cuda and faiss kNN")
    return f"{args.knn_size} x 30 neighbours identical (torch-cuda vs faiss CPU)"


def reclustering(args) -> str:
    features = torch.from_numpy(synthetic_reid_features(args.cluster_size))
    where = "GPU" if cuda_usable() else "CPU"
    if cuda_usable():  # the loop's path on a GPU: features on the device, torch Jaccard ("auto")
        features = features.cuda()
        dbscan_labels(features[:2000], eps=0.6, min_samples=4, k1=30, k2=6)  # CUDA context and kernels warm
    timings = {}
    labels = dbscan_labels(features, eps=0.6, min_samples=4, k1=30, k2=6, timings=timings)
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    summary = f"{args.cluster_size} features -> {labels.max() + 1} clusters; {where}: {phases}, " \
              f"{sum(timings.values()):.1f} s in all"
    if cuda_usable():
        cpu_labels = dbscan_labels(features.cpu(), eps=0.6, min_samples=4, k1=30, k2=6, knn_backend="faiss",
                                   jaccard_backend="scipy")
        if not np.array_equal(labels, cpu_labels):
            raise AssertionError(f"{summary}; labels differ from the CPU path's at {int((labels != cpu_labels).sum())} "
                                 f"points")
        summary += " (goal 2 s); labels identical to the CPU (faiss + scipy) path"
    return summary


def step_benchmark(args) -> str:
    if not cuda_usable():
        return SKIPPED
    result = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_step.py"), "--device", "cuda"],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def gpu_demo(args) -> str:
    if not cuda_usable():
        return SKIPPED
    command = [sys.executable, os.path.join(REPO, "tools", "demo.py"), "--data-root",
               os.path.join(args.out, "synvi-demo"), "--output", os.path.join(args.out, "demo"), "MODEL.DEVICE", "cuda"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=args.demo_timeout)
    if result.returncode:
        raise RuntimeError(result.stderr.strip()[-300:])
    lines = result.stdout.strip().splitlines()
    return "; ".join(line.strip() for line in lines[-3:])


def nccl_world_size(args) -> str:
    if not cuda_usable():
        return SKIPPED
    if torch.cuda.device_count() < 2:
        return f"skipped: {torch.cuda.device_count()} GPU here; 1 vs 2 NCCL processes need two"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", os.path.join(REPO, "tests", "distributed",
                                                                               "test_world_size.py")],
                            capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PROBE_DEVICE="cuda"))
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-200:]
    if result.returncode:
        raise RuntimeError(summary)
    return f"1 vs 2 NCCL processes: {summary}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="logs/gpu-check")
    parser.add_argument("--knn-size", type=int, default=20000)
    parser.add_argument("--cluster-size", type=int, default=34000)
    parser.add_argument("--demo-timeout", type=float, default=300, help="seconds the GPU demo may take")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    device = torch.cuda.get_device_name(0) if cuda_usable() else "no CUDA device: CPU parts only"
    rows, failed = [], False
    for name, check in (("CUDA tests", cuda_tests), ("AMP iterations", amp_iterations), ("kNN parity", knn_parity),
                        ("re-clustering", reclustering), ("bench_step", step_benchmark),
                        ("demo on the GPU", gpu_demo), ("NCCL world size", nccl_world_size)):
        start = time.perf_counter()
        try:
            outcome, status = check(args), "ok"
        except Exception as err:  # report every check, then fail
            outcome, status, failed = f"{type(err).__name__}: {err}", "FAILED", True
        status = "skipped" if outcome.startswith("skipped") else status
        rows.append((name, status, outcome, time.perf_counter() - start))
        print(f"{name}: {status}", file=sys.stderr, flush=True)
    print(f"\ngpu-check on {device}, torch {torch.__version__}")
    print("| check | status | result | seconds |")
    print("|---|---|---|---|")
    for name, status, outcome, seconds in rows:
        print(f"| {name} | {status} | {outcome.replace('|', '/')} | {seconds:.0f} |")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
