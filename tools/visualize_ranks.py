#!/usr/bin/env python3
"""Rank lists of a trained model as PNG grids: each query, then its top-k gallery images,
framed green (same identity) or red.

    python tools/visualize_ranks.py --config-file configs/SynVI/miot.yml --output ranks/ \\
        [--select worst|random] [--num 8] [--topk 10] --opts MODEL.WEIGHTS logs/SynVI/miot/model_final.pth

For each test set of ``DATASETS.TESTS``: the protocol's query -> gallery direction (trial 0
gallery for random-gallery protocols) and, with ``--reverse``, gallery -> query. ``worst``
shows the queries whose first correct match ranks lowest; ``random`` a seeded random sample.
"""
import argparse
import os

import numpy as np
import torch
from PIL import Image, ImageDraw

import fastreid_ext  # noqa: F401  (first)
from fastreid_ext.data import build_cross_modality_dataset, build_inference_loader, read_image
from fastreid_ext.engine import apply_allocator_policy, extract_features, load_trained_model, setup_config
from fastreid_ext.evaluation import sample_random_gallery

CELL = (64, 128)  # width, height of one image in the grid
BORDER = 4


def first_hit_rank(order: np.ndarray, q_pid: int, g_pids: np.ndarray) -> int:
    hits = np.flatnonzero(g_pids[order] == q_pid)
    return int(hits[0]) if len(hits) else len(order)


def draw_grid(rows, path: str) -> None:
    """rows: [(query path, [(gallery path, correct)])]; one row per query."""
    width = CELL[0] * (1 + max(len(r[1]) for r in rows)) + BORDER * 2
    canvas = Image.new("RGB", (width, CELL[1] * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for y, (query, ranked) in enumerate(rows):
        canvas.paste(read_image(query).resize(CELL), (0, y * CELL[1]))
        for x, (gallery, correct) in enumerate(ranked, 1):
            left, top = x * CELL[0] + BORDER * 2, y * CELL[1]
            canvas.paste(read_image(gallery).resize((CELL[0] - 2 * BORDER, CELL[1] - 2 * BORDER)),
                         (left + BORDER, top + BORDER))
            draw.rectangle([left, top, left + CELL[0] - 1, top + CELL[1] - 1], outline="green" if correct else "red",
                           width=BORDER)
    canvas.save(path)


def visualize(cfg, output: str, select: str, num: int, topk: int, reverse: bool, seed: int = 0):
    model = load_trained_model(cfg)
    written = []
    os.makedirs(output, exist_ok=True)
    for name in cfg.DATASETS.TESTS:
        data = build_cross_modality_dataset(cfg, name)
        gallery = data.gallery
        if data.random_gallery:
            keep = sample_random_gallery([s.pid for s in gallery], [s.camid for s in gallery], trial=0)
            gallery = [gallery[i] for i in keep]
        directions = [("query2gallery", data.query, gallery)] + ([("gallery2query", gallery, data.query)] if reverse else [])
        for direction, queries, candidates in directions:
            q = extract_features(model, build_inference_loader(cfg, queries, num_workers=0), flip=False)
            g = extract_features(model, build_inference_loader(cfg, candidates, num_workers=0), flip=False)
            order = torch.argsort(q @ g.t(), dim=1, descending=True).numpy()
            g_pids = np.array([s.pid for s in candidates])
            ranks = np.array([first_hit_rank(order[i], s.pid, g_pids) for i, s in enumerate(queries)])
            if select == "worst":
                chosen = np.argsort(-ranks, kind="stable")[:num]
            else:
                chosen = np.random.default_rng(seed).choice(len(queries), min(num, len(queries)), replace=False)
            rows = [(queries[i].img_path, [(candidates[j].img_path, candidates[j].pid == queries[i].pid)
                                           for j in order[i][:topk]]) for i in chosen]
            path = os.path.join(output, f"{name}_{direction}_{select}.png")
            draw_grid(rows, path)
            written.append(path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--output", default="ranks")
    parser.add_argument("--select", choices=["worst", "random"], default="worst")
    parser.add_argument("--num", type=int, default=8, help="queries per grid")
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--reverse", action="store_true", help="also gallery -> query (e.g. visible -> infrared)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --select random")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides (MODEL.WEIGHTS ...)")
    args = parser.parse_args(argv)
    cfg = setup_config(args.config_file, args.opts, eval_only=True)
    apply_allocator_policy(cfg)
    for path in visualize(cfg, args.output, args.select, args.num, args.topk, args.reverse, args.seed):
        print(path)


if __name__ == "__main__":
    main()
