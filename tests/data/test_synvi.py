"""SynVI writes deterministic data sets in the SYSU-MM01 and RegDB layouts."""
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastreid_ext.data.synvi import generate


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(str(tmp_path / name), "sysu", num_ids=5, seed=seed, images_per_cam=2, size=(32, 16))
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_cli_writes_the_regdb_layout(tmp_path):
    subprocess.run([sys.executable, "-m", "fastreid_ext.data.synvi", "--root", str(tmp_path), "--layout", "regdb",
                    "--num-ids", "6", "--seed", "1", "--images-per-cam", "2", "--height", "32", "--width", "16"],
                   check=True, capture_output=True)
    base = tmp_path / "RegDB"
    assert len(list((base / "Visible").rglob("*.bmp"))) == 12 and len(list((base / "Thermal").rglob("*.bmp"))) == 12
    assert sorted(p.name for p in (base / "idx").iterdir()) == sorted(
        f"{s}_{m}_{t}.txt" for s in ("train", "test") for m in ("visible", "thermal") for t in range(1, 11))


def test_infrared_images_are_single_channel_and_visible_are_coloured(synvi_sysu):
    ir = np.asarray(Image.open(next((synvi_sysu / "SYSU-MM01" / "cam3").rglob("*.jpg"))), dtype=np.int16)
    vis = np.asarray(Image.open(next((synvi_sysu / "SYSU-MM01" / "cam1").rglob("*.jpg"))), dtype=np.int16)
    assert ir.shape == vis.shape == (64, 32, 3)
    assert np.abs(ir[..., 0] - ir[..., 1]).max() <= 8  # grey up to JPEG noise
    assert np.abs(vis[..., 0] - vis[..., 2]).mean() > 10


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--layout must be one of"):
        generate(str(tmp_path), "market", num_ids=5)
    with pytest.raises(ValueError, match="--num-ids must be >= 4"):
        generate(str(tmp_path), "sysu", num_ids=2)
