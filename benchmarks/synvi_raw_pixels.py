#!/usr/bin/env python3
"""How hard is SynVI? Cross-modality Rank-1/mAP of raw pixels under the SYSU-MM01 protocol.

    python benchmarks/synvi_raw_pixels.py --root datasets/synvi [--size 64 32]

Each test image is resized, turned into a vector of its pixels (standardised per image) and
ranked by cosine similarity; a trained model's numbers on the same data set come from
``tools/train_net.py --eval-only`` (see projects/MIOT/README.md).
"""
import argparse

import numpy as np

import fastreid_ext  # noqa: F401
from fastreid_ext.data import read_image
from fastreid_ext.data.datasets import SYSUMM01
from fastreid_ext.evaluation import evaluate_cross_modality, sample_random_gallery


def pixels(path: str, size) -> np.ndarray:
    image = np.asarray(read_image(path).resize((size[1], size[0])), dtype=np.float64).ravel()
    image = (image - image.mean()) / (image.std() + 1e-8)
    return image / np.linalg.norm(image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="datasets/synvi")
    parser.add_argument("--size", type=int, nargs=2, default=[64, 32])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    data = SYSUMM01(root=args.root)
    q = np.stack([pixels(s.img_path, args.size) for s in data.query])
    g = np.stack([pixels(s.img_path, args.size) for s in data.gallery])
    dist = 1 - q @ g.T
    q_pids, q_cams = np.array([s.pid for s in data.query]), np.array([s.camid for s in data.query])
    g_pids, g_cams = np.array([s.pid for s in data.gallery]), np.array([s.camid for s in data.gallery])
    scores = []
    for trial in range(args.trials):
        keep = sample_random_gallery(g_pids, g_cams, trial)
        cmc, mAP, mINP = evaluate_cross_modality(dist[:, keep], q_pids, g_pids[keep], q_cams, g_cams[keep], "sysu")
        scores.append([cmc[0], mAP, mINP])
    r1, mAP, mINP = np.mean(scores, axis=0) * 100
    ids = len(set(g_pids))
    print(f"raw pixels, SYSU all-search, {len(q)} queries, {ids} gallery identities (chance Rank-1 {100 / ids:.1f}%): "
          f"Rank-1 {r1:.1f}  mAP {mAP:.1f}  mINP {mINP:.1f}")


if __name__ == "__main__":
    main()
