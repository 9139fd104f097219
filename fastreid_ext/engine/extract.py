"""Embedding every image of a loader with a model: used for clustering, export and ranking."""
import torch
import torch.nn.functional as F
from tqdm import tqdm


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


@torch.no_grad()
def extract_features(model: torch.nn.Module, loader, flip: bool, progress: bool = False) -> torch.Tensor:
    """(N, D) L2-normalised embeddings of a loader's images, in order, on the CPU.

    The model takes a fastreid batch dict (``images`` (B, 3, H, W), ...) and returns (B, D) in
    eval mode; with ``flip`` the embeddings of each image and its mirror image are summed
    before normalising. The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        for batch in tqdm(loader, desc="extract", disable=not progress, leave=False):
            features = model(batch)
            if flip:
                features = features + model(dict(batch, images=batch["images"].flip(dims=[3])))
            out.append(F.normalize(features, dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)
