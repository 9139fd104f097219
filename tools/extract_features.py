#!/usr/bin/env python3
"""Embed a folder of images of one modality with a trained model.

    python tools/extract_features.py --config-file configs/SynVI/miot.yml --images DIR \\
        --modality infrared --output OUT MODEL.WEIGHTS logs/SynVI/miot/model_final.pth

Writes OUT/features.npy ((N, D) float32, L2-normalised embeddings, one row per image) and
OUT/index.txt (the image paths, relative to DIR, in the same order).
"""
import argparse
import os

import numpy as np

import fastreid_ext  # noqa: F401  (first)
from fastreid_ext.data import INFRARED, VISIBLE, Sample, build_inference_loader
from fastreid_ext.engine import apply_allocator_policy, extract_features, load_trained_model, setup_config

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def list_images(folder: str):
    paths = sorted(os.path.relpath(os.path.join(root, f), folder) for root, _, files in os.walk(folder)
                   for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise FileNotFoundError(f"no image ({', '.join(IMAGE_EXTENSIONS)}) under {folder!r}")
    return paths


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--modality", choices=["visible", "infrared"], required=True)
    parser.add_argument("--output", required=True, help="folder for features.npy and index.txt")
    parser.add_argument("--flip", action="store_true", help="average with the horizontally flipped image")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides, e.g. MODEL.WEIGHTS ckpt")
    args = parser.parse_args(argv)

    cfg = setup_config(args.config_file, args.opts, eval_only=True)
    apply_allocator_policy(cfg)
    modality = VISIBLE if args.modality == "visible" else INFRARED
    relative = list_images(args.images)
    samples = [Sample(os.path.join(args.images, p), -1, -1, modality) for p in relative]
    model = load_trained_model(cfg)
    features = extract_features(model, build_inference_loader(cfg, samples, num_workers=0), flip=args.flip)
    os.makedirs(args.output, exist_ok=True)
    np.save(os.path.join(args.output, "features.npy"), features.numpy().astype(np.float32))
    with open(os.path.join(args.output, "index.txt"), "w") as f:
        f.write("\n".join(relative) + "\n")
    print(f"{len(relative)} {args.modality} images -> {args.output}/features.npy {tuple(features.shape)}")
    return args.output


if __name__ == "__main__":
    main()
