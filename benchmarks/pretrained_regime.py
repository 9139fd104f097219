#!/usr/bin/env python3
"""MIOT in the pretrained regime: a supervised source model, unsupervised training on SynVIs it has not seen.

    python benchmarks/pretrained_regime.py [--seeds 0 1 2] [--targets nir thermal]
                                           [--data datasets] [--out logs/pretrained]

1. Source: SynVI ``<data>/synvi`` (SYSU-MM01 layout, 100 identities, data seed 0, near-infrared)
   trained with its true identities (configs/SynVI/supervised.yml, SEED 0).
2. Targets: SynVI with data seed 1 (other identities, cameras, illumination and infrared dye
   response) under ``<data>/synvi-target-<sensor>``: one with near-infrared cameras, one with
   thermal ones.
3. On each target, from the source's weights, for each training seed (``SEED``): intra-only,
   PGM-like (two-round Hungarian, no CPAL), OT without CPAL and MIOT
   (configs/SynVI/pretrained/miot.yml and the variant's keys), and the supervised upper bound
   (configs/SynVI/pretrained/supervised.yml). "Source only" is the source model evaluated on the
   target (``--eval-only``).

Prints, per target: Rank-1 / mAP / mINP (SYSU all-search, 10 random-gallery trials) mean ±
std over seeds, the last epoch's pseudo-label diagnostics, and matching accuracy, identity
alignment and infrared cluster purity per epoch (mean over seeds). Finished runs under ``--out`` are reused.
"""
import argparse
import os
import sys
from typing import Dict, List

import numpy as np

from fastreid_ext.data.synvi import ensure
from runs import diagnostics_per_epoch, final_scores, last_diagnostics, train_once

SOURCE_SEED = 0  # data seed of the source SynVI (the SynVI of configs/SynVI/miot.yml)
TARGET_SEED = 1  # data seed of both targets
UNSUPERVISED = {  # variant: keys on top of configs/SynVI/pretrained/miot.yml
    "intra-only": ["MIOT.MATCHER.NAME", "none"],
    "PGM-like (two-round Hungarian, no CPAL)": ["MIOT.MATCHER.NAME", "two_round_hungarian",
                                                "MIOT.CPAL.ENABLED", "False"],
    "OT, no CPAL": ["MIOT.CPAL.ENABLED", "False"],
    "MIOT (OT + CPAL)": [],
}
SCORES = ("Rank-1", "mAP", "mINP")
PER_EPOCH = ("matching_accuracy", "identity_alignment", "purity_infrared")
LAST = ("clusters_visible", "clusters_infrared", "purity_visible", "purity_infrared", "matching_accuracy",
        "identity_alignment")


def run_dir(out: str, target: str, variant: str, seed: int) -> str:
    slug = variant.split(" (")[0].replace(",", "").replace(" ", "_").lower()
    return os.path.join(out, target, f"{slug}_seed{seed}")


def mean_over_runs(table) -> np.ndarray:
    """Column means of a (runs, values) table, ignoring NaN (NaN where a column has no value)."""
    table = np.asarray(table, dtype=float)
    counts = (~np.isnan(table)).sum(0)
    return np.where(counts > 0, np.nansum(table, 0) / np.maximum(counts, 1), np.nan)


def per_epoch(runs: List[str], key: str) -> np.ndarray:
    """``key`` at the start of every epoch, mean over the runs (NaN where no run logged it)."""
    return mean_over_runs([[r.get(key, np.nan) for r in diagnostics_per_epoch(run)] for run in runs])


def report(target: str, rows: Dict[str, tuple], epochs: Dict[str, Dict[str, np.ndarray]], seeds: List[int]) -> None:
    print(f"\nTarget: SynVI data seed {TARGET_SEED}, {target} infrared (SYSU-MM01 layout, all-search); "
          f"source: SynVI data seed {SOURCE_SEED}, nir, supervised. Mean ± std over seeds {seeds}")
    print("| variant | Rank-1 | mAP | mINP | clusters V / IR | purity V / IR | IR clusters matched right | "
          "identity alignment |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (mean, std, diag) in rows.items():
        scores = " | ".join(f"{m:.1f}" if np.isnan(s) else f"{m:.1f} ± {s:.1f}" for m, s in zip(mean, std))
        if diag is None:
            print(f"| {name} | {scores} | - | - | - | - |")
            continue
        match = "-" if np.isnan(diag[4]) else f"{100 * diag[4]:.0f}%"
        print(f"| {name} | {scores} | {diag[0]:.0f} / {diag[1]:.0f} | {diag[2]:.2f} / {diag[3]:.2f} | {match} | "
              f"{100 * diag[5]:.0f}% |")
    for key in PER_EPOCH:
        print(f"\n{key} per epoch (start of epoch, mean over seeds; '-': not computed)")
        num_epochs = len(next(iter(epochs.values()))[key])
        print("| variant | " + " | ".join(str(e) for e in range(num_epochs)) + " |")
        print("|---|" + "---|" * num_epochs)
        for name, values in epochs.items():
            print(f"| {name} | " + " | ".join("-" if np.isnan(v) else f"{100 * v:.0f}" for v in values[key]) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--targets", nargs="+", choices=["nir", "thermal"], default=["nir", "thermal"])
    parser.add_argument("--data", default="datasets", help="folder of the generated SynVIs")
    parser.add_argument("--out", default="logs/pretrained")
    args = parser.parse_args()

    source_root = os.path.join(args.data, "synvi")
    ensure(source_root, "sysu", num_ids=100, seed=SOURCE_SEED, infrared="nir")
    source = os.path.join(args.out, "source")
    train_once("SynVI/supervised.yml", source, ["DATASETS.ROOT", source_root, "SEED", str(SOURCE_SEED)])
    weights = os.path.join(source, "model_final.pth")
    print(f"source model: {weights}", file=sys.stderr, flush=True)

    for target in args.targets:
        root = os.path.join(args.data, f"synvi-target-{target}")
        ensure(root, "sysu", num_ids=100, seed=TARGET_SEED, infrared=target)
        data = ["DATASETS.ROOT", root]
        log = train_once("SynVI/supervised.yml", os.path.join(args.out, target, "source_only"),
                         data + ["MODEL.WEIGHTS", weights], eval_only=True)
        rows = {"source only (no target training)": (np.asarray(final_scores(log, SCORES)), np.full(3, np.nan), None)}
        epochs = {}
        for name, keys in list(UNSUPERVISED.items()) + [("supervised on the target (upper bound)", None)]:
            scores, last, runs = [], [], []
            for seed in args.seeds:
                out = run_dir(args.out, target, name, seed)
                config = "SynVI/pretrained/supervised.yml" if keys is None else "SynVI/pretrained/miot.yml"
                overrides = data + ["MODEL.BACKBONE.PRETRAIN_PATH", weights, "SEED", str(seed)] + (keys or [])
                scores.append(final_scores(train_once(config, out, overrides), SCORES))
                if keys is not None:
                    last.append(last_diagnostics(out, LAST))
                    runs.append(out)
                print(f"done: {target} {name} seed {seed}", file=sys.stderr, flush=True)
            scores = np.asarray(scores)
            rows[name] = (scores.mean(0), scores.std(0), mean_over_runs(last) if last else None)
            if runs:
                epochs[name] = {k: per_epoch(runs, k) for k in PER_EPOCH}
        report(target, rows, epochs, args.seeds)


if __name__ == "__main__":
    main()
