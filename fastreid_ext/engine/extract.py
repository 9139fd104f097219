"""Embedding every image of a loader with a model: used for clustering, export and ranking."""
import logging
from typing import Dict, Iterable, Iterator, List, Optional

import torch
import torch.nn.functional as F
from tqdm import tqdm

logger = logging.getLogger(__name__)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


def _with_mirrors(batch: Dict) -> Dict:
    """The batch followed by its mirror images: every per-image entry repeated once."""
    doubled = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            doubled[key] = torch.cat([value, value.flip(dims=[3]) if key == "images" else value])
        else:
            doubled[key] = list(value) + list(value)
    return doubled


def extract_features(model: torch.nn.Module, loader: Iterable[Dict], flip: bool,
                     progress: bool = False) -> torch.Tensor:
    """(N, D) L2-normalised embeddings of a loader's images, in order, on the CPU.

    The model takes a fastreid batch dict (``images`` (B, 3, H, W), ...) and returns (B, D) in
    eval mode; with ``flip`` each image and its mirror image pass in one forward (a batch of
    2B) and their embeddings are summed before normalising. Runs under
    ``torch.inference_mode``; the model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for batch in tqdm(loader, desc="extract", disable=not progress, leave=False):
                if flip:
                    both = model(_with_mirrors(batch))
                    features = both[: len(both) // 2] + both[len(both) // 2:]
                else:
                    features = model(batch)
                out.append(F.normalize(features, dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


class ImageBatchCache:
    """The batches of an inference loader kept in memory after the first pass, so that later
    passes decode and resize nothing. Test-time transforms are deterministic, so a cached pass
    yields exactly the loader's batches, and it advances torch's global generator as a loader
    pass does; images in [0, 255] with integer values (what PIL
    images give) are stored as uint8, four times smaller and lossless.

    Args:
        limit_mb: the most memory the images may take; a set that needs more is read from
            disk every pass, with a warning that says how much it needs. 0 disables the cache.
        name: what the warning calls the images (e.g. the key that sets ``limit_mb``).
    """

    def __init__(self, limit_mb: float, name: str = "the cache"):
        self.limit_bytes = int(limit_mb * 2 ** 20)
        self.name = name
        self._batches: Optional[List[Dict]] = None
        self._too_large = limit_mb <= 0

    @property
    def filled(self) -> bool:
        return self._batches is not None

    def batches(self, loader) -> Iterator[Dict]:
        """The loader's batches: from memory once a pass has been kept, else from the loader
        (keeping them when they fit)."""
        if self._batches is not None:
            # a DataLoader iterator draws its base seed from torch's global generator; draw it
            # too, so that the training's random stream (augmentation, sampling) is the same
            # whether the images come from memory or from disk
            torch.empty((), dtype=torch.int64).random_()
            for batch in self._batches:
                yield dict(batch, images=batch["images"].to(torch.float32))
            return
        kept: Optional[List[Dict]] = None if self._too_large else []
        stored = 0
        for batch in loader:
            if kept is not None:
                images = batch["images"]
                lossless = bool(torch.equal(images, images.round()) and images.min() >= 0 and images.max() <= 255)
                compact = images.to(torch.uint8) if lossless else images.clone()
                stored += compact.numel() * compact.element_size()
                needed = stored / (len(kept) + 1) * len(loader)  # bytes the whole pass will take
                if needed > self.limit_bytes:
                    logger.warning("%s: the %d batches of test-time images need about %.0f MB, more than its limit "
                                   "of %.0f MB; they are read from disk at every pass (raise the limit to keep "
                                   "them in memory)", self.name, len(loader), needed / 2 ** 20,
                                   self.limit_bytes / 2 ** 20)
                    kept, self._too_large = None, True
                else:
                    kept.append(dict(batch, images=compact))
            yield batch
        if kept is not None:
            self._batches = kept
