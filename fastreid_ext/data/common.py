"""A map-style dataset over :class:`Sample` records that reads images on demand."""
import logging
import random
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .datasets.bases import Sample


logger = logging.getLogger(__name__)


class ImageReadError(OSError):
    """An image file exists in the index but cannot be decoded."""


def seeded_call(transform: Callable, image, seed: int):
    """``transform(image)`` with python's, numpy's and torch's (CPU) random generators seeded by
    ``seed``, restored afterwards: the same seed gives the same augmentation in any process."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2 ** 32)
            torch.default_generator.manual_seed(seed)  # the CPU's only: seeding CUDA would cost a call per image
            return transform(image)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def read_image(path: str) -> Image.Image:
    """Open an image as RGB (infrared images are stored as 1- or 3-channel intensity images)."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageReadError(f"cannot read image {path!r}: {err}. Replace or remove the file "
                             f"(DATASETS.ON_CORRUPT_IMAGE skip makes training skip such images).") from err


class ImageListDataset(Dataset):
    """Items are dicts: ``images`` (C, H, W) float in [0, 255], ``targets`` (the sample's
    label: a pseudo label for training, the identity for testing), ``camids``,
    ``modalities``, ``index`` (position in ``samples``) and ``img_paths``.

    Args:
        samples: the images.
        transforms: one callable per modality (0 visible, 1 infrared), or a single callable.
        labels: per-sample labels (e.g. pseudo labels); defaults to each sample's ``pid``.
        on_corrupt: ``"raise"`` (an :class:`ImageReadError` naming the file) or ``"skip"``
            (a warning naming it, and the next readable image of the same modality instead,
            with that image's ``index``).
    """

    def __init__(self, samples: Sequence[Sample], transforms, labels: Optional[Sequence[int]] = None,
                 on_corrupt: str = "raise"):
        if on_corrupt not in ("raise", "skip"):
            raise ValueError(f"on_corrupt must be 'raise' or 'skip', got {on_corrupt!r}")
        self.samples = list(samples)
        self.transforms = transforms
        self.on_corrupt = on_corrupt
        self.labels = list(labels) if labels is not None else [s.pid for s in self.samples]
        if len(self.labels) != len(self.samples):
            raise ValueError(f"got {len(self.labels)} labels for {len(self.samples)} samples")

    def __len__(self) -> int:
        return len(self.samples)

    def _transform(self, modality: int) -> Callable:
        if isinstance(self.transforms, (list, tuple)):
            return self.transforms[modality]
        return self.transforms

    def _read(self, index: int):
        """(index actually used, PIL image), applying the corrupt-image policy."""
        try:
            return index, read_image(self.samples[index].img_path)
        except ImageReadError as err:
            if self.on_corrupt == "raise":
                raise
            logger.warning("skipping a corrupt image (DATASETS.ON_CORRUPT_IMAGE skip): %s", err)
            modality = self.samples[index].modality
            for step in range(1, len(self.samples)):
                other = (index + step) % len(self.samples)
                if self.samples[other].modality == modality:
                    try:
                        return other, read_image(self.samples[other].img_path)
                    except ImageReadError:
                        continue
            raise ImageReadError(f"no readable image of modality {modality} left") from err

    def __getitem__(self, index: int) -> Dict:
        """The item at ``index``; an index with a ``seed`` (a sampler's :class:`SeededIndex`) has its
        random transforms seeded by it, others draw from the process's generators."""
        seed = getattr(index, "seed", None)
        index, pil = self._read(int(index))
        sample = self.samples[index]
        transform = self._transform(sample.modality)
        image = transform(pil) if seed is None else seeded_call(transform, pil, seed)
        return {
            "images": image,
            "targets": int(self.labels[index]),
            "camids": sample.camid,
            "modalities": sample.modality,
            "index": index,
            "img_paths": sample.img_path,
        }


def collate(batch: List[Dict]) -> Dict:
    """Stack tensors, turn ints into tensors, keep strings as lists."""
    out = {}
    for key in batch[0]:
        values = [item[key] for item in batch]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], int):
            out[key] = torch.tensor(values, dtype=torch.long)
        else:
            out[key] = values
    return out
