#!/usr/bin/env python3
"""MIOT in the pretrained regime: a supervised source model, unsupervised training on SynVIs it has not seen.

    python benchmarks/pretrained_regime.py [--seeds 0 1 2] [--targets nir thermal]
                                           [--data datasets] [--out logs/pretrained] [--source DIR]
                                           [--variants intra-only pgm-like ot-no-cpal miot supervised]
                                           [--miot-opts KEY VALUE ...]

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
std over seeds, the last epoch's pseudo-label diagnostics (for "source only": those of the
unsupervised runs' epoch 0, i.e. of the source model on the target's training set), and
matching accuracy, identity alignment and infrared cluster purity per epoch (mean over
seeds). Finished runs under ``--out`` (``<out>/<target>/<variant>_seed<k>``) are reused, unless
trained with another config than the current one (an error that names the keys).
``--miot-opts`` adds keys to every unsupervised run, for a sensitivity study in another
``--out`` from the same ``--source``.
"""
import argparse
import os
import sys
from typing import Dict, List

import numpy as np

from fastreid_ext.data.synvi import ensure
from runs import diagnostics_at, diagnostics_per_epoch, final_scores, train_once

SOURCE_SEED = 0  # data seed of the source SynVI (the SynVI of configs/SynVI/miot.yml)
TARGET_SEED = 1  # data seed of both targets
VARIANTS = {  # name on the command line: (row of the table, config under configs/SynVI/pretrained/, its keys)
    "intra-only": ("intra-only", "miot.yml", ["MIOT.MATCHER.NAME", "none"]),
    "pgm-like": ("PGM-like (two-round Hungarian, no CPAL)", "miot.yml",
                 ["MIOT.MATCHER.NAME", "two_round_hungarian", "MIOT.CPAL.ENABLED", "False"]),
    "ot-no-cpal": ("OT, no CPAL", "miot.yml", ["MIOT.CPAL.ENABLED", "False"]),
    "miot": ("MIOT (OT + CPAL)", "miot.yml", []),
    "supervised": ("supervised on the target (upper bound)", "supervised.yml", []),
}
SCORES = ("Rank-1", "mAP", "mINP")
PER_EPOCH = ("matching_accuracy", "identity_alignment", "purity_infrared")
DIAGNOSTICS = ("clusters_visible", "clusters_infrared", "purity_visible", "purity_infrared", "matching_accuracy",
               "identity_alignment")


def mean_over_runs(table) -> np.ndarray:
    """Column means of a (runs, values) table, ignoring NaN (NaN where a column has no value)."""
    table = np.asarray(table, dtype=float)
    counts = (~np.isnan(table)).sum(0)
    return np.where(counts > 0, np.nansum(table, 0) / np.maximum(counts, 1), np.nan)


def per_epoch(runs: List[str], key: str) -> np.ndarray:
    """``key`` at the start of every epoch, mean over the runs (NaN where no run logged it)."""
    return mean_over_runs([[r.get(key, np.nan) for r in diagnostics_per_epoch(run)] for run in runs])


def report(target: str, rows: Dict[str, tuple], epochs: Dict[str, Dict[str, np.ndarray]], seeds: List[int],
           miot_opts: List[str]) -> None:
    print(f"\nTarget: SynVI data seed {TARGET_SEED}, {target} infrared (SYSU-MM01 layout, all-search); "
          f"source: SynVI data seed {SOURCE_SEED}, nir, supervised. Mean ± std over seeds {seeds}"
          + (f"; unsupervised runs with {' '.join(miot_opts)}" if miot_opts else ""))
    print("| variant | Rank-1 | mAP | mINP | clusters V / IR | purity V / IR | IR clusters matched right | "
          "identity alignment |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (mean, std, diag) in rows.items():
        scores = " | ".join(f"{m:.1f}" if np.isnan(s) else f"{m:.1f} ± {s:.1f}" for m, s in zip(mean, std))
        if diag is None:
            print(f"| {name} | {scores} | - | - | - | - |")
            continue
        match = "-" if np.isnan(diag[4]) else f"{100 * diag[4]:.0f}%"  # NaN: no matching
        print(f"| {name} | {scores} | {diag[0]:.0f} / {diag[1]:.0f} | {diag[2]:.2f} / {diag[3]:.2f} | {match} | "
              f"{100 * diag[5]:.0f}% |")
    if not epochs:
        return
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
    parser.add_argument("--source", default="", help="folder of the source run (default: <out>/source)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--miot-opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="config keys added to every unsupervised run (e.g. MIOT.CLUSTER.EPS 0.4)")
    args = parser.parse_args()

    source_root = os.path.join(args.data, "synvi")
    ensure(source_root, "sysu", num_ids=100, seed=SOURCE_SEED, infrared="nir")
    source = args.source or os.path.join(args.out, "source")
    train_once("SynVI/supervised.yml", source, ["DATASETS.ROOT", source_root, "SEED", str(SOURCE_SEED)])
    weights = os.path.join(source, "model_final.pth")
    print(f"source model: {weights}", file=sys.stderr, flush=True)

    for target in args.targets:
        root = os.path.join(args.data, f"synvi-target-{target}")
        ensure(root, "sysu", num_ids=100, seed=TARGET_SEED, infrared=target)
        data = ["DATASETS.ROOT", root]
        log = train_once("SynVI/supervised.yml", os.path.join(args.out, target, "source_only"),
                         data + ["MODEL.WEIGHTS", weights], eval_only=True)
        source_only = "source only (no target training)"
        rows = {source_only: (np.asarray(final_scores(log, SCORES)), np.full(3, np.nan), None)}
        epochs, starts = {}, []
        for variant in args.variants:
            name, config, keys = VARIANTS[variant]
            unsupervised = config == "miot.yml"
            scores, last, runs = [], [], []
            for seed in args.seeds:
                out = os.path.join(args.out, target, f"{variant}_seed{seed}")
                overrides = data + ["MODEL.BACKBONE.PRETRAIN_PATH", weights, "SEED", str(seed)] + keys
                overrides += args.miot_opts if unsupervised else []
                scores.append(final_scores(train_once(f"SynVI/pretrained/{config}", out, overrides), SCORES))
                if unsupervised:
                    last.append(diagnostics_at(out, DIAGNOSTICS))
                    starts.append(diagnostics_at(out, DIAGNOSTICS, epoch=0))
                    runs.append(out)
                print(f"done: {target} {variant} seed {seed}", file=sys.stderr, flush=True)
            scores = np.asarray(scores)
            rows[name] = (scores.mean(0), scores.std(0), mean_over_runs(last) if last else None)
            if runs:
                epochs[name] = {k: per_epoch(runs, k) for k in PER_EPOCH}
        if starts:  # the pseudo labels of the source model itself: epoch 0 of the unsupervised runs
            rows[source_only] = rows[source_only][:2] + (mean_over_runs(starts),)
        report(target, rows, epochs, args.seeds, args.miot_opts)


if __name__ == "__main__":
    main()
