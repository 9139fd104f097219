"""Augmentations used in visible-infrared ReID, built per modality from the config."""
import random
from typing import Callable, Tuple

import numpy as np
import torch
import torchvision.transforms as T
from fastreid.config import CfgNode


class ToTensor255:
    """PIL RGB image -> (3, H, W) float32 tensor in [0, 255] (fastreid's pixel convention)."""

    def __call__(self, img) -> torch.Tensor:
        return torch.from_numpy(np.array(img, dtype=np.float32)).permute(2, 0, 1).contiguous()


def one_channel(img: torch.Tensor, choice: int) -> torch.Tensor:
    """(3, H, W) image made of one channel: R, G or B (``choice`` 0, 1, 2) or the grayscale
    version (3), copied to all three."""
    channel = img[choice] if choice < 3 else 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    return channel.unsqueeze(0).expand_as(img).clone()


class ChannelExchange:
    """Channel augmentation for visible images (Ye et al., CAJ, ICCV 2021): with probability
    ``prob`` replace the image by one of its R, G, B channels copied to all three, or by its
    grayscale version, chosen uniformly. Narrows the gap to single-channel infrared images."""

    def __init__(self, prob: float = 0.5):
        self.prob = prob

    def __call__(self, img: torch.Tensor) -> torch.Tensor:  # (3, H, W)
        if random.random() >= self.prob:
            return img
        return one_channel(img, random.randint(0, 3))


class ChannelAdaptiveGray:
    """PGM's infrared augmentation (Wu & Ye, CVPR 2023, ``ChannelAdapGray``): one of four
    choices, uniformly: the R, G or B channel copied to all three, or (with probability
    ``prob``) the grayscale image, otherwise the image unchanged."""

    def __init__(self, prob: float = 0.5):
        self.prob = prob

    def __call__(self, img: torch.Tensor) -> torch.Tensor:  # (3, H, W)
        choice = random.randint(0, 3)
        if choice < 3 or random.random() < self.prob:
            return one_channel(img, choice)
        return img


def _size(size) -> Tuple[int, int]:
    return (int(size[0]), int(size[1]))


def build_modality_transforms(cfg: CfgNode, modality: int, is_train: bool) -> Callable:
    """Transforms for one modality (0 visible, 1 infrared); test transforms ignore modality."""
    if not is_train:
        return T.Compose([T.Resize(_size(cfg.INPUT.SIZE_TEST), interpolation=T.InterpolationMode.BICUBIC),
                          ToTensor255()])
    size = _size(cfg.INPUT.SIZE_TRAIN)
    steps = [T.Resize(size, interpolation=T.InterpolationMode.BICUBIC)]
    if cfg.INPUT.PADDING.ENABLED:
        steps += [T.Pad(cfg.INPUT.PADDING.SIZE, padding_mode=cfg.INPUT.PADDING.MODE), T.RandomCrop(size)]
    if cfg.INPUT.FLIP.ENABLED:
        steps.append(T.RandomHorizontalFlip(cfg.INPUT.FLIP.PROB))
    xm = cfg.INPUT.CROSS_MODALITY
    if modality == 1 and xm.IR_JITTER.ENABLED:
        steps.append(T.ColorJitter(brightness=xm.IR_JITTER.BRIGHTNESS, contrast=xm.IR_JITTER.CONTRAST))
    if modality == 0 and xm.COLOR_JITTER.ENABLED:
        jitter = xm.COLOR_JITTER
        steps.append(T.ColorJitter(brightness=jitter.BRIGHTNESS, contrast=jitter.CONTRAST,
                                   saturation=jitter.SATURATION, hue=jitter.HUE))
    if modality == 0 and xm.RANDOM_GRAYSCALE_PROB > 0:
        steps.append(T.RandomGrayscale(xm.RANDOM_GRAYSCALE_PROB))
    steps.append(ToTensor255())
    if modality == 0 and xm.CHANNEL_EXCHANGE.ENABLED:
        steps.append(ChannelExchange(xm.CHANNEL_EXCHANGE.PROB))
    if modality == 1 and xm.CHANNEL_ADAPTIVE_GRAY.ENABLED:
        steps.append(ChannelAdaptiveGray(xm.CHANNEL_ADAPTIVE_GRAY.PROB))
    if cfg.INPUT.REA.ENABLED:
        steps.append(T.RandomErasing(p=cfg.INPUT.REA.PROB, value=tuple(float(v) for v in cfg.INPUT.REA.VALUE)))
    return T.Compose(steps)
