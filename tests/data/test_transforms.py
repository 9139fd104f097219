"""Modality-specific augmentations."""
import random

import numpy as np
import torch
from fastreid.config import get_cfg
from PIL import Image

from fastreid_ext import add_ext_config
from fastreid_ext.data import ChannelExchange, build_modality_transforms


def test_channel_exchange_replaces_the_image_by_one_channel_or_its_grey_version():
    img = torch.stack([torch.full((4, 2), 10.0), torch.full((4, 2), 20.0), torch.full((4, 2), 30.0)])
    random.seed(0)
    seen = set()
    for _ in range(200):
        out = ChannelExchange(prob=1.0)(img)
        assert out.shape == img.shape and torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
        seen.add(round(float(out[0, 0, 0]), 3))
    assert seen == {10.0, 20.0, 30.0, round(0.299 * 10 + 0.587 * 20 + 0.114 * 30, 3)}
    assert torch.equal(ChannelExchange(prob=0.0)(img), img)


def test_train_and_test_transforms_give_float_tensors_of_the_configured_size():
    cfg = add_ext_config(get_cfg())
    cfg.INPUT.SIZE_TRAIN, cfg.INPUT.SIZE_TEST = [32, 16], [24, 12]
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 20, 3), dtype=np.uint8))
    for modality in (0, 1):
        out = build_modality_transforms(cfg, modality, is_train=True)(image)
        assert out.shape == (3, 32, 16) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 255
    test = build_modality_transforms(cfg, 1, is_train=False)(image)
    assert test.shape == (3, 24, 12)
    assert torch.equal(test, build_modality_transforms(cfg, 0, is_train=False)(image))  # deterministic, modality-free


def test_channel_adaptive_gray_picks_a_channel_or_with_its_probability_the_grey_image():
    from fastreid_ext.data.transforms import ChannelAdaptiveGray

    img = torch.stack([torch.full((4, 2), 10.0), torch.full((4, 2), 20.0), torch.full((4, 2), 30.0)])
    grey = round(0.299 * 10 + 0.587 * 20 + 0.114 * 30, 3)
    random.seed(0)
    always = {round(float(ChannelAdaptiveGray(prob=1.0)(img)[1, 0, 0]), 3) for _ in range(200)}
    assert always == {10.0, 20.0, 30.0, grey}  # the fourth choice is always grey with prob 1
    never = [ChannelAdaptiveGray(prob=0.0)(img) for _ in range(200)]
    unchanged = [out for out in never if torch.equal(out, img)]
    assert 20 < len(unchanged) < 80  # the fourth choice (about 1 in 4) leaves the image as it is
    assert {round(float(out[1, 0, 0]), 3) for out in never} == {10.0, 20.0, 30.0}


def test_pgm_augmentations_are_in_the_pipeline_of_their_modality_only_when_enabled():
    from torchvision.transforms import ColorJitter

    from fastreid_ext.data.transforms import ChannelAdaptiveGray

    cfg = add_ext_config(get_cfg())
    kinds = lambda modality: {type(t) for t in build_modality_transforms(cfg, modality, True).transforms}  # noqa: E731
    assert ColorJitter not in kinds(0) and ChannelAdaptiveGray not in kinds(1)
    cfg.INPUT.CROSS_MODALITY.COLOR_JITTER.ENABLED = True
    cfg.INPUT.CROSS_MODALITY.CHANNEL_ADAPTIVE_GRAY.ENABLED = True
    assert ColorJitter in kinds(0) and ChannelAdaptiveGray in kinds(1)
    assert ChannelAdaptiveGray not in kinds(0) and ChannelExchange not in kinds(1)


def test_a_seeded_item_is_augmented_the_same_in_any_process_and_leaves_the_generators_alone(tmp_path):
    from fastreid_ext.data import ImageListDataset, Sample, SeededIndex

    cfg = add_ext_config(get_cfg())
    cfg.INPUT.SIZE_TRAIN = [32, 16]
    cfg.INPUT.FLIP.ENABLED, cfg.INPUT.PADDING.ENABLED, cfg.INPUT.REA.ENABLED = True, True, True
    cfg.INPUT.CROSS_MODALITY.CHANNEL_EXCHANGE.ENABLED = True
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 20, 3), dtype=np.uint8)).save(path)
    dataset = ImageListDataset([Sample(str(path), 1, 0, 0)], build_modality_transforms(cfg, 0, is_train=True))
    torch.manual_seed(0), random.seed(0)
    first = dataset[SeededIndex(0, 11)]["images"]
    state = (torch.get_rng_state(), random.getstate())
    torch.manual_seed(1), random.seed(1)  # another process, other generator states
    assert torch.equal(dataset[SeededIndex(0, 11)]["images"], first)
    others = [dataset[SeededIndex(0, seed)]["images"] for seed in range(12, 20)]
    assert any(not torch.equal(other, first) for other in others)  # the seed does draw the augmentation
    torch.manual_seed(0), random.seed(0)
    dataset[SeededIndex(0, 11)]
    assert torch.equal(torch.get_rng_state(), state[0]) and random.getstate() == state[1]
