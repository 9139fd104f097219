"""SynVI writes deterministic data sets in the SYSU-MM01 and RegDB layouts."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastreid_ext.data.synvi import INFRARED, PALETTE, _world, ensure, generate


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


def test_each_layout_has_its_real_infrared_sensor_and_either_can_be_chosen(tmp_path):
    for layout, folder, default in (("sysu", "SYSU-MM01", "nir"), ("regdb", "RegDB", "thermal")):
        for infrared in ("", "nir", "thermal"):
            root = tmp_path / f"{layout}-{infrared or 'default'}"
            generate(str(root), layout, num_ids=4, seed=0, images_per_cam=1, size=(32, 16), infrared=infrared)
            assert json.loads((root / folder / "SYNVI.json").read_text())["infrared"] == (infrared or default)
    assert digest(tmp_path / "sysu-default") == digest(tmp_path / "sysu-nir") != digest(tmp_path / "sysu-thermal")


def test_near_infrared_keeps_more_of_the_visible_luminance_than_thermal():
    _, mapping, _ = _world(10, seed=0)
    luma = PALETTE @ np.array([0.299, 0.587, 0.114]) / 255.0
    nir = np.array([INFRARED["nir"].intensity(c, mapping) for c in PALETTE])
    heat = np.array([INFRARED["thermal"].intensity(c, mapping) for c in PALETTE])
    assert np.corrcoef(luma, nir)[0, 1] > np.corrcoef(luma, heat)[0, 1]
    assert np.corrcoef(luma, nir)[0, 1] > 0.9


def test_ensure_keeps_the_same_synvi_rewrites_another_and_never_touches_foreign_data(tmp_path):
    generate(str(tmp_path / "small"), "sysu", num_ids=4, seed=0, size=(32, 16))
    assert ensure(str(tmp_path / "small"), "sysu", num_ids=4, seed=0)["size"] == [128, 64]  # rewritten
    generate(str(tmp_path / "a"), "sysu", num_ids=4, seed=0, infrared="thermal")
    thermal_digest = digest(tmp_path / "a")
    assert ensure(str(tmp_path / "a"), "sysu", num_ids=4, seed=0, infrared="thermal")["infrared"] == "thermal"
    assert digest(tmp_path / "a") == thermal_digest  # kept as it was
    assert ensure(str(tmp_path / "a"), "sysu", num_ids=4, seed=0)["infrared"] == "nir"  # the default sensor
    generate(str(tmp_path / "b"), "sysu", num_ids=4, seed=0)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != thermal_digest
    foreign = tmp_path / "real" / "SYSU-MM01"
    foreign.mkdir(parents=True)
    (foreign / "keep.txt").write_text("not SynVI")
    with pytest.raises(FileExistsError, match="not a SynVI folder"):
        ensure(str(tmp_path / "real"), "sysu", num_ids=4)
    assert (foreign / "keep.txt").read_text() == "not SynVI"


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--layout must be one of"):
        generate(str(tmp_path), "market", num_ids=5)
    with pytest.raises(ValueError, match="--num-ids must be >= 4"):
        generate(str(tmp_path), "sysu", num_ids=2)
    with pytest.raises(ValueError, match="--infrared must be one of"):
        generate(str(tmp_path), "sysu", num_ids=5, infrared="uv")


def test_the_llcm_layout_is_read_by_the_llcm_reader(tmp_path):
    from fastreid_ext.data.datasets.llcm import LLCM, LLCMVisible2Infrared

    summary = generate(str(tmp_path), "llcm", num_ids=8, seed=0, images_per_cam=2, size=(32, 16))
    dataset = LLCM(root=str(tmp_path))
    assert summary["train_ids"] == 6 and summary["test_ids"] == 2
    assert len(dataset.train_visible) + len(dataset.query) + len(dataset.gallery) + len(dataset.train_infrared) \
        == summary["images"]["vis"] + summary["images"]["nir"]
    assert all(s.pid == -1 and s.true_pid >= 0 for s in dataset.train_visible + dataset.train_infrared)
    assert {s.modality for s in dataset.query} == {1} and {s.modality for s in dataset.gallery} == {0}
    assert {s.camid for s in dataset.query + dataset.gallery} <= {1, 2, 3, 4}
    assert {s.pid for s in dataset.query} == {s.pid for s in LLCMVisible2Infrared(root=str(tmp_path)).gallery}
