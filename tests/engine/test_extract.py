"""Extraction for clustering: one forward over images and mirrors gives the features of two
forwards; the in-memory cache yields the loader's batches exactly and respects its limit."""
import logging

import pytest
import torch
import torch.nn.functional as F

from conftest_helpers import tiny_miot_model
from fastreid_ext.engine import ImageBatchCache, extract_features


def batches(count=3, size=8, seed=0, integral=True):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        images = torch.rand(size, 3, 32, 16, generator=g) * 255
        out.append({"images": images.round() if integral else images,
                    "modalities": (torch.arange(size) >= size // 2).long(),
                    "index": torch.arange(i * size, (i + 1) * size),
                    "img_paths": [f"{i}_{j}.png" for j in range(size)]})
    return out


class CountingLoader:
    """A loader of fixed batches that counts how often it is iterated."""

    def __init__(self, items):
        self.items, self.passes = items, 0

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        self.passes += 1
        return iter(self.items)


def two_forwards(model, loader):
    """The flip-averaged features as two separate forwards compute them."""
    model.eval()
    with torch.no_grad():
        return torch.cat([F.normalize(model(b) + model(dict(b, images=b["images"].flip(dims=[3]))), dim=1)
                          for b in loader])


def test_one_forward_over_images_and_mirrors_gives_the_two_forward_features():
    model = tiny_miot_model(two_stream=True)
    loader = batches()
    ours = extract_features(model, loader, flip=True)
    assert model.training  # the model's mode is restored
    assert (ours - two_forwards(model, loader)).abs().max() < 1e-5
    unflipped = extract_features(model, loader, flip=False)
    assert (unflipped - ours).abs().max() > 1e-3  # flip matters, so the check above can fail


def test_a_cached_pass_yields_the_loaders_batches_without_reading_them_again():
    loader = CountingLoader(batches())
    cache = ImageBatchCache(limit_mb=10)
    first = list(cache.batches(loader))
    second = list(cache.batches(loader))
    assert loader.passes == 1 and cache.filled
    for a, b in zip(first, second):
        assert b["images"].dtype == torch.float32 and torch.equal(a["images"], b["images"])
        assert torch.equal(a["index"], b["index"]) and a["img_paths"] == b["img_paths"]


def test_integral_images_are_kept_as_uint8_and_others_as_they_are():
    integral, fractional = ImageBatchCache(10), ImageBatchCache(10)
    list(integral.batches(batches()))
    list(fractional.batches(batches(integral=False)))
    assert integral._batches[0]["images"].dtype == torch.uint8
    assert fractional._batches[0]["images"].dtype == torch.float32
    again = list(fractional.batches(None))
    assert torch.equal(again[0]["images"], batches(integral=False)[0]["images"])  # lossless either way


def test_a_set_over_the_limit_is_read_from_disk_every_pass_with_a_warning(caplog):
    loader = CountingLoader(batches(count=4))  # 4 x 8 images x 3 x 32 x 16 uint8 = 48 KiB
    cache = ImageBatchCache(limit_mb=0.02, name="MIOT.EXTRACT_CACHE_MB")
    with caplog.at_level(logging.WARNING):
        assert len(list(cache.batches(loader))) == 4
    assert "MIOT.EXTRACT_CACHE_MB" in caplog.text and "need about 0 MB" in caplog.text
    assert not cache.filled
    assert len(list(cache.batches(loader))) == 4 and loader.passes == 2


@pytest.mark.parametrize("limit", [0, -1])
def test_a_zero_limit_disables_the_cache(limit):
    loader = CountingLoader(batches())
    cache = ImageBatchCache(limit_mb=limit)
    list(cache.batches(loader))
    list(cache.batches(loader))
    assert loader.passes == 2 and not cache.filled


def test_a_cached_pass_advances_the_global_generator_as_a_loader_pass_does():
    from torch.utils.data import DataLoader

    loader = DataLoader(batches(), batch_size=None)  # what a loader pass draws: its base seed
    cache = ImageBatchCache(limit_mb=10)
    list(cache.batches(loader))
    torch.manual_seed(0)
    list(loader)
    after_loader = torch.get_rng_state()
    torch.manual_seed(0)
    list(cache.batches(loader))
    assert cache.filled and torch.equal(torch.get_rng_state(), after_loader)
