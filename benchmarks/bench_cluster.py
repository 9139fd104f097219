#!/usr/bin/env python3
"""Pseudo-label clustering: our sparse Jaccard + DBSCAN vs the dense reference algorithm.

    python benchmarks/bench_cluster.py [--sizes 8000 16000 34000] [--reference-max 16000]

ReID-like features (identities = random unit centres + Gaussian noise, D = 2048, ~50 images
per identity). Each measurement runs in its own process so that peak memory (max RSS) is
its own. Printed per N: seconds and peak memory of ours, of the dense reference (N x N
float32 arrays, faiss kNN, per-row loops, as in ClusterContrast's compute_jaccard_distance)
and of the exact kNN search alone (faiss IndexFlatIP, k1 neighbours); clusters found; the
speed ratio reference / ours and ours / kNN.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

EPS, MIN_SAMPLES, K1, K2 = 0.6, 4, 30, 6


def faiss_ranks(x: np.ndarray, k: int) -> np.ndarray:
    import faiss

    x32 = np.ascontiguousarray(x, dtype=np.float32)
    return faiss.knn(x32, x32, k, metric=faiss.METRIC_INNER_PRODUCT)[1]


def worker(mode: str, n: int) -> dict:
    from fastreid_ext.cluster import dbscan_labels  # imports outside the timed part
    from fastreid_ext.testing import dense_dbscan_labels, synthetic_reid_features

    features = synthetic_reid_features(n)
    baseline_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    start = time.perf_counter()
    labels = None
    if mode == "ours":
        labels = dbscan_labels(features, EPS, MIN_SAMPLES, K1, K2, progress=False)
    elif mode == "reference":
        labels = dense_dbscan_labels(features, EPS, MIN_SAMPLES, K1, K2, knn=faiss_ranks, dtype=np.float32)
    else:
        x = features / np.linalg.norm(features, axis=1, keepdims=True)
        faiss_ranks(x, K1)
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
              "baseline_gb": baseline_gb}
    if labels is not None:
        result.update(clusters=int(labels.max() + 1), outliers=int((labels == -1).sum()))
        np.save(f"/tmp/bench_cluster_{mode}_{n}.npy", labels)
    return result


def run(mode: str, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", mode, "--n", str(n)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8000, 16000, 34000])
    parser.add_argument("--reference-max", type=int, default=16000,
                        help="largest N for the dense reference (it needs several N x N arrays)")
    parser.add_argument("--worker", choices=["ours", "reference", "knn"])
    parser.add_argument("--n", type=int)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n)))
        return

    header = ("N", "kNN s", "ours s", "ours peak GB", "ref s", "ref peak GB", "clusters ours/ref", "same labels",
              "ref/ours", "ours/kNN")
    print(f"eps={EPS} min_samples={MIN_SAMPLES} k1={K1} k2={K2} D=2048, {os.cpu_count()} CPUs")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for n in args.sizes:
        knn, ours = run("knn", n), run("ours", n)
        ref = run("reference", n) if n <= args.reference_max else None
        same = "-"
        if ref:
            a, b = np.load(f"/tmp/bench_cluster_ours_{n}.npy"), np.load(f"/tmp/bench_cluster_reference_{n}.npy")
            same = "yes" if np.array_equal(a, b) else f"no ({int((a != b).sum())} differ)"
        row = [n, f"{knn['seconds']:.1f}", f"{ours['seconds']:.1f}", f"{ours['peak_gb']:.2f}",
               f"{ref['seconds']:.1f}" if ref else "-", f"{ref['peak_gb']:.2f}" if ref else "-",
               f"{ours['clusters']}/{ref['clusters'] if ref else '-'}", same,
               f"{ref['seconds'] / ours['seconds']:.1f}x" if ref else "-", f"{ours['seconds'] / knn['seconds']:.2f}"]
        print("| " + " | ".join(str(v) for v in row) + " |", flush=True)
    print(f"peak GB = max RSS of the process, including {ours['baseline_gb']:.2f} GB held before clustering "
          f"(interpreter, torch/faiss/fastreid imports and the features) at the last N")


if __name__ == "__main__":
    main()
