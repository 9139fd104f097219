"""Readers of SYSU-MM01, RegDB and LLCM on generated trees in the real layouts, and their errors."""
import json
import os
import shutil
from pathlib import Path

import pytest
from fastreid.data.datasets import DATASET_REGISTRY

from fastreid_ext.data import DatasetLayoutError, ImageReadError, read_image
from fastreid_ext.data.datasets import INFRARED, VISIBLE, LLCM, RegDB, SYSUMM01

NAMES = ["SYSUMM01", "SYSUMM01Indoor", "RegDB", "RegDBThermal2Visible", "LLCM", "LLCMVisible2Infrared"]


def test_every_cross_modality_dataset_is_in_fastreids_registry():
    for name in NAMES:
        assert DATASET_REGISTRY.get(name).__name__ == name


def test_sysu_reader_counts_modalities_and_cameras(synvi_sysu):
    data = SYSUMM01(root=str(synvi_sysu))
    summary = json.loads((synvi_sysu / "SYSU-MM01" / "SYNVI.json").read_text())
    exp = synvi_sysu / "SYSU-MM01" / "exp"
    train_ids = {int(i) for f in ("train_id.txt", "val_id.txt") for i in (exp / f).read_text().strip().split(",")}
    test_ids = {int(i) for i in (exp / "test_id.txt").read_text().strip().split(",")}
    assert len(train_ids) == summary["train_ids"] and len(test_ids) == summary["test_ids"]

    assert {s.camid for s in data.train_visible} <= {1, 2, 4, 5}
    assert {s.camid for s in data.train_infrared} <= {3, 6}
    assert {s.modality for s in data.train_visible} == {VISIBLE}
    assert {s.modality for s in data.train_infrared} == {INFRARED}
    # unsupervised: no training identity is exposed as a label, only under true_pid
    assert {s.pid for s in data.train} == {-1}
    assert {s.true_pid for s in data.train} == train_ids
    total = sum(summary["images"].values())
    all_test_visible = sum(len(os.listdir(synvi_sysu / "SYSU-MM01" / f"cam{c}" / f"{p:04d}"))
                           for c in (1, 2, 4, 5) for p in test_ids
                           if (synvi_sysu / "SYSU-MM01" / f"cam{c}" / f"{p:04d}").is_dir())
    assert len(data.train) + len(data.query) + all_test_visible == total

    assert {s.modality for s in data.query} == {INFRARED} and {s.camid for s in data.query} <= {3, 6}
    assert {s.pid for s in data.query} == test_ids
    assert {s.modality for s in data.gallery} == {VISIBLE} and {s.camid for s in data.gallery} <= {1, 2, 4, 5}
    assert len(data.gallery) == all_test_visible and data.protocol == "sysu" and data.random_gallery

    indoor = DATASET_REGISTRY.get("SYSUMM01Indoor")(root=str(synvi_sysu))
    assert {s.camid for s in indoor.gallery} <= {1, 2} and indoor.query == data.query
    # identities in sorted order, then cameras, then files sorted
    keys = [(s.true_pid, s.camid, s.img_path) for s in data.train_visible]
    assert keys == sorted(keys)


def test_regdb_reader_reads_each_split_and_both_directions(synvi_regdb):
    one, two = RegDB(root=str(synvi_regdb), trial=1), RegDB(root=str(synvi_regdb), trial=2)
    assert len(one.train_visible) == len(one.train_infrared) == 4 * 4
    for reader, trial in ((one, 1), (two, 2)):  # each trial reads its own idx files
        def listed(split, modality):
            path = synvi_regdb / "RegDB" / "idx" / f"{split}_{modality}_{trial}.txt"
            return [line.split() for line in path.read_text().splitlines()]

        assert {s.pid for s in reader.query} == {int(pid) for _, pid in listed("test", "visible")}
        assert {s.pid for s in reader.gallery} == {int(pid) for _, pid in listed("test", "thermal")}
        train = [(os.path.normpath(os.path.join(synvi_regdb, "RegDB", rel)), int(label))
                 for rel, label in listed("train", "thermal")]
        assert [(os.path.normpath(s.img_path), s.true_pid) for s in reader.train_infrared] == train
    assert {s.pid for s in one.query} != {s.pid for s in two.query}  # SynVI's trials 1 and 2 split differently
    assert {s.modality for s in one.query} == {VISIBLE} and {s.modality for s in one.gallery} == {INFRARED}
    assert {s.true_pid for s in one.train} == set(range(4)) and {s.pid for s in one.train} == {-1}
    assert not ({s.pid for s in one.query} & {s.pid for s in one.train})  # labels 0..3 vs ids 1..8
    reverse = DATASET_REGISTRY.get("RegDBThermal2Visible")(root=str(synvi_regdb), trial=1)
    assert reverse.query == one.gallery and reverse.gallery == one.query
    assert one.protocol == "regdb" and not one.random_gallery
    with pytest.raises(ValueError, match="DATASETS.REGDB.TRIAL must be in 1..10"):
        RegDB(root=str(synvi_regdb), trial=11)


def write_llcm(root: Path, source: Path) -> Path:
    """An LLCM tree (idx/*.txt + images named with their camera) from a SynVI SYSU tree."""
    base = root / "LLCM"
    lines = {"train_vis": [], "train_nir": [], "test_vis": [], "test_nir": []}
    for cam_dir in sorted((source / "SYSU-MM01").glob("cam*")):
        cam = int(cam_dir.name[3:])
        modality = "nir" if cam in (3, 6) else "vis"
        for pid_dir in sorted(cam_dir.iterdir()):
            pid = int(pid_dir.name)
            split = "test" if pid % 3 == 0 else "train"
            for k, img in enumerate(sorted(pid_dir.iterdir())):
                rel = f"{modality}/{pid:04d}/{pid:04d}_c{cam:02d}_s{k}_{modality}.jpg"
                (base / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(img, base / rel)
                lines[f"{split}_{modality}"].append(f"{rel} {pid}")
    (base / "idx").mkdir()
    for name, content in lines.items():
        (base / "idx" / f"{name}.txt").write_text("\n".join(content) + "\n")
    return root


def test_llcm_reader_parses_cameras_and_directions(synvi_sysu, tmp_path):
    root = write_llcm(tmp_path, synvi_sysu)
    data = LLCM(root=str(root))
    assert {s.modality for s in data.query} == {INFRARED} and {s.camid for s in data.query} <= {3, 6}
    assert {s.camid for s in data.gallery} <= {1, 2, 4, 5} and data.random_gallery
    assert {s.pid for s in data.train} == {-1} and all(s.true_pid % 3 for s in data.train)
    reverse = DATASET_REGISTRY.get("LLCMVisible2Infrared")(root=str(root))
    assert reverse.query == data.gallery


# ----------------------------------------------------------------------------- bad input
def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst


def test_missing_root_names_the_path_and_the_readme(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"SYSU-MM01.*is missing.*README.md, section 'Data sets'"):
        SYSUMM01(root=str(tmp_path))
    with pytest.raises(DatasetLayoutError, match="RegDB"):
        RegDB(root=str(tmp_path))


def test_missing_split_file_is_named(synvi_sysu, tmp_path):
    root = copy_tree(synvi_sysu, tmp_path / "d")
    (root / "SYSU-MM01" / "exp" / "test_id.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="test_id.txt.*is missing"):
        SYSUMM01(root=str(root))


def test_id_file_naming_missing_folders_is_refused(synvi_sysu, tmp_path):
    root = copy_tree(synvi_sysu, tmp_path / "d")
    exp = root / "SYSU-MM01" / "exp" / "test_id.txt"
    exp.write_text(exp.read_text().strip() + ",9999\n")
    with pytest.raises(DatasetLayoutError, match=r"identity 9999 listed in exp/\*_id.txt"):
        SYSUMM01(root=str(root))


def test_index_file_problems_are_named(synvi_regdb, tmp_path):
    root = copy_tree(synvi_regdb, tmp_path / "d")
    index = root / "RegDB" / "idx" / "train_visible_1.txt"
    lines = index.read_text().splitlines()
    index.write_text("\n".join(lines + ["Visible/1/missing.bmp 0"]) + "\n")
    with pytest.raises(DatasetLayoutError, match=r"missing.bmp.*is missing"):
        RegDB(root=str(root), trial=1)
    index.write_text("\n".join(lines + ["no-label-here"]) + "\n")
    with pytest.raises(DatasetLayoutError, match=r"'relative/image/path label' on line"):
        RegDB(root=str(root), trial=1)


def test_truncated_image_error_names_the_file(synvi_sysu, tmp_path):
    source = next((synvi_sysu / "SYSU-MM01" / "cam1").rglob("*.jpg"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(source.read_bytes()[:200])
    with pytest.raises(ImageReadError, match="broken.jpg"):
        read_image(str(broken))
    assert read_image(str(source)).mode == "RGB"
