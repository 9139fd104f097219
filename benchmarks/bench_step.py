#!/usr/bin/env python3
"""Seconds per training iteration: MIOT vs fastreid's stock Baseline, same backbone, batch and
image size, measured in the same run.

    python benchmarks/bench_step.py [--depth 50x] [--size 288 144] [--batch 64] [--iters 10]
                                    [--device auto] [--prototypes 400]

One iteration = forward, losses, backward, Adam step (and, for MIOT, the memories' momentum
update after the step), on random images already on the device: the model's own cost, without
data loading. MIOT runs stage 2 (PBCL intra + cross, CPAL through an OT plan between
``--prototypes`` visible and infrared prototypes); Baseline is BoT (EmbeddingHead, cross-entropy
over ``--prototypes`` classes + triplet). Both use the same ResNet depth, pooling (GeM), batch
and image size. The target is MIOT <= 1.2x Baseline. Prints a Markdown row; the first
``--warmup`` iterations are not timed.
"""
import argparse
import time

import torch
import torch.nn.functional as F

import fastreid_ext  # noqa: F401  (first)
from fastreid.config import get_cfg
from fastreid.modeling import build_model
from fastreid.solver import build_optimizer
from fastreid.utils.events import EventStorage
from fastreid_ext import add_ext_config
from fastreid_ext.matching import match_prototypes
from fastreid_ext.utils import cuda_usable
from miot import add_miot_config
from miot.pseudo_labels import PseudoLabels


def common_cfg(args, meta_architecture: str):
    cfg = add_miot_config(add_ext_config(get_cfg()))
    cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.DEVICE = meta_architecture, args.device
    backbone = cfg.MODEL.BACKBONE
    backbone.DEPTH, backbone.FEAT_DIM, backbone.PRETRAIN, backbone.LAST_STRIDE = args.depth, args.feat_dim, False, 1
    cfg.MODEL.HEADS.POOL_LAYER = "GeneralizedMeanPoolingP"
    cfg.SOLVER.OPT, cfg.SOLVER.BASE_LR = "Adam", 3.5e-4
    return cfg


def build_miot(args):
    cfg = common_cfg(args, "MIOT")
    cfg.MIOT.TWO_STREAM = True
    model = build_model(cfg).train()
    g = torch.Generator().manual_seed(0)
    protos_v = F.normalize(torch.randn(args.prototypes, args.feat_dim, generator=g), dim=1)
    protos_r = F.normalize(protos_v + 0.5 * torch.randn(args.prototypes, args.feat_dim, generator=g), dim=1)
    matches = match_prototypes(protos_v, protos_r, method="ot")
    labels = torch.randint(0, args.prototypes, (args.batch,), generator=g).numpy()
    half = args.batch // 2
    model.set_targets(PseudoLabels(0, labels[:half], labels[half:], protos_v, protos_r, matches=matches))
    batch = {"images": 255 * torch.rand(args.batch, 3, *args.size, generator=g),
             "modalities": torch.arange(args.batch) >= args.batch // 2, "index": torch.arange(args.batch)}
    batch["modalities"] = batch["modalities"].long()

    return cfg, model, batch, model.apply_updates


def build_baseline(args):
    cfg = common_cfg(args, "Baseline")
    heads = cfg.MODEL.HEADS
    heads.NAME, heads.NECK_FEAT, heads.CLS_LAYER, heads.NUM_CLASSES = "EmbeddingHead", "before", "Linear", args.prototypes
    cfg.MODEL.LOSSES.NAME = ("CrossEntropyLoss", "TripletLoss")
    model = build_model(cfg).train()
    g = torch.Generator().manual_seed(0)
    per_id = 8
    targets = torch.arange(args.batch // per_id).repeat_interleave(per_id)  # P x K, as triplet needs
    batch = {"images": 255 * torch.rand(args.batch, 3, *args.size, generator=g), "targets": targets}
    return cfg, model, batch, lambda: None


def timed_step(model, batch, optimizer, after_step, device: torch.device) -> float:
    """Seconds of one training iteration."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    losses = model(batch)
    optimizer.zero_grad()
    sum(losses.values()).backward()
    optimizer.step()
    after_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def seconds_per_iteration(build, args) -> float:
    """Median seconds per iteration of the model ``build(args)`` makes, after the warm-up."""
    cfg, model, batch, after_step = build(args)
    optimizer, _ = build_optimizer(cfg, model)
    device = torch.device(args.device)
    batch = {k: v.to(device) for k, v in batch.items()}
    with EventStorage(0):  # fastreid's heads log their accuracy to it
        times = [timed_step(model, batch, optimizer, after_step, device) for _ in range(args.warmup + args.iters)]
    return float(torch.tensor(times[args.warmup:]).median())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", default="50x")
    parser.add_argument("--feat-dim", type=int, default=0, help="0: 2048 for ResNet-50/101, 512 otherwise")
    parser.add_argument("--size", type=int, nargs=2, default=[288, 144])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--prototypes", type=int, default=400)
    parser.add_argument("--device", default="auto", help="auto: cuda when usable, else cpu")
    args = parser.parse_args()
    args.device = ("cuda" if cuda_usable() else "cpu") if args.device == "auto" else args.device
    args.feat_dim = args.feat_dim or (2048 if args.depth in ("50x", "101x") else 512)
    miot = seconds_per_iteration(build_miot, args)
    baseline = seconds_per_iteration(build_baseline, args)
    print(f"device {args.device}, ResNet-{args.depth[:-1]}, {args.size[0]}x{args.size[1]}, batch {args.batch}, "
          f"median of {args.iters} iterations")
    print("| device | backbone | image | batch | MIOT s/iter | Baseline s/iter | MIOT / Baseline |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.device} | R{args.depth[:-1]} | {args.size[0]}x{args.size[1]} | {args.batch} | {miot:.3f} | "
          f"{baseline:.3f} | {miot / baseline:.2f}x |")


if __name__ == "__main__":
    main()
