#!/usr/bin/env python3
"""Plot a training run's per-epoch curves from its metrics.json into one PNG.

    python tools/plot_training.py logs/SynVI/miot [--output curves.png]

Panels: loss terms; clusters and outliers per modality; matched infrared clusters; mean match
confidence, cluster purity, matching accuracy and identity alignment (the last three on data
sets with ground truth only); evaluation Rank-1 / mAP / mINP. Panels without data are left out.
"""
import argparse
import json
import os
from collections import defaultdict
from typing import Dict, List, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = [
    ("losses", ["total_loss", "loss_intra", "loss_cross", "loss_cpal"]),
    ("clusters / outliers", ["clusters_visible", "clusters_infrared", "outliers_visible", "outliers_infrared"]),
    ("matching", ["matched_infrared"]),
    ("pseudo-label quality (purity, accuracy, alignment: diagnostics)",
     ["match_confidence", "purity_visible", "purity_infrared", "matching_accuracy", "identity_alignment"]),
    ("evaluation (%)", ["Rank-1", "mAP", "mINP"]),
]


def read_series(metrics_path: str) -> Dict[str, List[Tuple[int, float]]]:
    """key -> [(iteration, value)], from fastreid's JSONWriter output (one JSON object a line)."""
    series = defaultdict(list)
    with open(metrics_path) as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            iteration = record.pop("iteration", None)
            for key, value in record.items():
                name = key.split("/")[-1]  # "SYSUMM01/Rank-1" -> "Rank-1"
                if isinstance(value, (int, float)):
                    series[name].append((iteration, float(value)))
    return series


def plot(output_dir: str, output: str) -> str:
    metrics = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(metrics):
        raise FileNotFoundError(f"{metrics} not found: give the OUTPUT_DIR of a training run")
    series = read_series(metrics)
    panels = [(title, [k for k in keys if k in series]) for title, keys in PANELS]
    panels = [(title, keys) for title, keys in panels if keys]
    if not panels:
        raise ValueError(f"{metrics} holds none of the plotted metrics")
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), squeeze=False)
    for ax, (title, keys) in zip(axes[:, 0], panels):
        for key in keys:
            xs, ys = zip(*series[key])
            ax.plot(xs, ys, marker="o", markersize=3, label=key)
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    plt.close(fig)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", help="a training run's OUTPUT_DIR (with metrics.json)")
    parser.add_argument("--output", help="PNG path (default: OUTPUT_DIR/training_curves.png)")
    args = parser.parse_args()
    print(plot(args.output_dir, args.output or os.path.join(args.output_dir, "training_curves.png")))


if __name__ == "__main__":
    main()
