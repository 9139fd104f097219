"""Shared fixtures: tiny generated data sets in real on-disk layouts."""
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fastreid_ext  # noqa: F401  (applies the compat fixes before fastreid is used)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def write_market1501(root: Path, num_train_ids: int = 20, num_test_ids: int = 10,
                     imgs_per_cam: int = 8, seed: int = 0) -> Path:
    """Write a tiny data set in Market-1501's layout (``XXXX_cY_...jpg``): each identity is a
    colour block pattern, so a small network can learn it in a few iterations."""
    rng = np.random.default_rng(seed)
    base = root / "Market-1501-v15.09.15"
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        (base / split).mkdir(parents=True, exist_ok=True)
    for pid in range(1, num_train_ids + num_test_ids + 1):
        colours = rng.integers(0, 256, size=(3, 3))
        for cam in (1, 2):
            for k in range(imgs_per_cam):
                img = np.zeros((64, 32, 3), dtype=np.float32)
                for band in range(3):
                    img[band * 21:(band + 1) * 21 + 1] = colours[band]
                img += rng.normal(0, 20, size=img.shape)
                pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
                name = f"{pid:04d}_c{cam}s1_{k:06d}_00.jpg"
                split = "bounding_box_train" if pid <= num_train_ids else (
                    "query" if k == 0 else "bounding_box_test")
                pil.save(base / split / name)
    return root


@pytest.fixture(scope="session")
def market_root(tmp_path_factory) -> Path:
    return write_market1501(tmp_path_factory.mktemp("market"))


@pytest.fixture(scope="session")
def synvi_sysu(tmp_path_factory) -> Path:
    """A tiny SynVI in SYSU-MM01's layout (12 identities, 3 images per camera, 64x32)."""
    from fastreid_ext.data.synvi import generate

    root = tmp_path_factory.mktemp("synvi_sysu")
    generate(str(root), "sysu", num_ids=12, seed=0, images_per_cam=3, size=(64, 32))
    return root


@pytest.fixture(scope="session")
def synvi_regdb(tmp_path_factory) -> Path:
    """A tiny SynVI in RegDB's layout (8 identities, 4 images per modality, 64x32)."""
    from fastreid_ext.data.synvi import generate

    root = tmp_path_factory.mktemp("synvi_regdb")
    generate(str(root), "regdb", num_ids=8, seed=0, images_per_cam=4, size=(64, 32))
    return root


@pytest.fixture(scope="session")
def tiny_miot_run(synvi_sysu, tmp_path_factory):
    """Two epochs of MIOT on the tiny SynVI (the second with matching), evaluated at the end:
    (trainer, loss recorder, results, output dir). Tests must not modify the output dir."""
    from conftest_helpers import LossRecorder, make_trainer

    out = tmp_path_factory.mktemp("miot")
    trainer = make_trainer(synvi_sysu, out, "SOLVER.MAX_EPOCH", "2", "TEST.EVAL_PERIOD", "2", "SEED", "0")
    recorder = LossRecorder()
    trainer.register_hooks([recorder])
    results = trainer.train()
    return trainer, recorder, results, out
