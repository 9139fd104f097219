#!/usr/bin/env python3
"""Feature extraction for clustering: the previous path against the loop's path, same model and
images, measured in the same run.

    python benchmarks/bench_extract.py [--config-file configs/SynVI/miot.yml] [--data-root datasets/synvi-demo]
                                       [--repeats 3]

The set is the demo's training set (SynVI, SYSU-MM01 layout, 100 identities: 2,346 training
images), generated if absent; the model is the config's (ResNet-18, random weights, seed 0), in
eval mode, flip-averaged features as the loop extracts them every epoch.

- previous: ``torch.no_grad``, one forward for the images and a second for their mirrors,
  every image decoded and resized from disk at every pass (the loader the loop built each epoch);
- loop: ``torch.inference_mode``, images and mirrors in one forward of twice the batch, the
  decoded test-time images kept in memory after the first pass (``ImageBatchCache``, what
  ``MIOT.EXTRACT_CACHE_MB`` allows); its first pass, which fills the cache, is timed apart.

Prints seconds (best of ``--repeats``), the largest difference between the two paths' features
and, last, the speed-up of the loop's steady pass over the previous path as ``N.Nx``.
"""
import argparse
import os

import torch
import torch.nn.functional as F

import fastreid_ext  # noqa: F401  (first)
from fastreid.modeling import build_model
from fastreid_ext.data import build_cross_modality_train_split, build_inference_loader
from fastreid_ext.data.synvi import ensure
from fastreid_ext.engine import ImageBatchCache, extract_features, setup_config
from runs import best_of

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def previous_path(model, loader) -> torch.Tensor:
    """The extraction the loop ran before: two forwards per batch under no_grad."""
    out = []
    with torch.no_grad():
        for batch in loader:
            features = model(batch) + model(dict(batch, images=batch["images"].flip(dims=[3])))
            out.append(F.normalize(features, dim=1))
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default=os.path.join(REPO, "configs", "SynVI", "miot.yml"))
    parser.add_argument("--data-root", default=os.path.join(REPO, "datasets", "synvi-demo"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    ensure(args.data_root, "sysu", num_ids=100, seed=0)
    cfg = setup_config(args.config_file, ["DATASETS.ROOT", args.data_root])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    dataset, _ = build_cross_modality_train_split(cfg)
    samples = list(dataset.train_visible) + list(dataset.train_infrared)
    loader = build_inference_loader(cfg, samples, batch_size=cfg.MIOT.EXTRACT_BATCH)

    previous_s, previous = best_of(lambda: previous_path(model, loader), args.repeats)
    cache = ImageBatchCache(cfg.MIOT.EXTRACT_CACHE_MB)
    first_s, _ = best_of(lambda: extract_features(model, cache.batches(loader), flip=True), 1)
    steady_s, ours = best_of(lambda: extract_features(model, cache.batches(loader), flip=True), args.repeats)
    difference = (ours - previous).abs().max().item()
    print(f"{len(samples)} images {cfg.INPUT.SIZE_TEST[0]}x{cfg.INPUT.SIZE_TEST[1]}, "
          f"ResNet-{cfg.MODEL.BACKBONE.DEPTH}, batch {cfg.MIOT.EXTRACT_BATCH}, flip, "
          f"{torch.get_num_threads()} threads, best of {args.repeats}")
    print("| path | seconds |\n|---|---|")
    print(f"| previous (two forwards, decoded every pass) | {previous_s:.2f} |")
    print(f"| loop, first pass (fills the cache) | {first_s:.2f} |")
    print(f"| loop, later passes | {steady_s:.2f} |")
    print(f"max abs difference of the features: {difference:.1e}")
    print(f"speed-up of the loop's later passes over the previous path: {previous_s / steady_s:.1f}x")


if __name__ == "__main__":
    main()
