"""SYSU-MM01 (Wu et al., ICCV 2017) in its distributed layout.

    SYSU-MM01/
      cam1/0001/0001.jpg ...      visible: cam1, cam2, cam4, cam5; infrared: cam3, cam6
      exp/train_id.txt, exp/val_id.txt, exp/test_id.txt   comma-separated identity numbers

Training uses train + val identities (395; 22,258 visible and 11,909 infrared images).
Test: query = every infrared image of the 96 test identities; gallery candidates = their
visible images of cams 1, 2, 4, 5 (all-search) or 1, 2 (indoor-search); each trial keeps
one random image per (identity, camera).
"""
import os
from typing import List, Sequence

from fastreid.data.datasets import DATASET_REGISTRY

from .bases import (INFRARED, VISIBLE, CrossModalityDataset, DatasetLayoutError, Sample,
                    read_id_list, require, sorted_images)

VISIBLE_CAMS = (1, 2, 4, 5)
INFRARED_CAMS = (3, 6)
INDOOR_CAMS = (1, 2)


def _collect(dataset: str, base: str, pids: Sequence[int], cams: Sequence[int], modality: int,
             train: bool) -> List[Sample]:
    samples = []
    for pid in pids:
        for cam in cams:
            folder = os.path.join(base, f"cam{cam}", f"{pid:04d}")
            if os.path.isdir(folder):
                samples.extend(Sample.for_training(p, cam, modality, pid) if train else
                               Sample.for_test(p, pid, cam, modality) for p in sorted_images(folder))
    return samples


@DATASET_REGISTRY.register()
class SYSUMM01(CrossModalityDataset):
    """SYSU-MM01, all-search protocol (infrared query, visible gallery of cams 1, 2, 4, 5)."""

    dataset_dir = "SYSU-MM01"
    protocol = "sysu"
    random_gallery = True
    gallery_cams = VISIBLE_CAMS
    layout = "a SYSU-MM01/ folder with cam1..cam6/ and exp/ under DATASETS.ROOT"

    def __init__(self, root: str = "datasets", **kwargs):
        name, base = type(self).__name__, self.dataset_folder(root)
        for cam in VISIBLE_CAMS + INFRARED_CAMS:
            require(name, os.path.join(base, f"cam{cam}"), f"camera folder cam{cam}/ of SYSU-MM01")
        exp = os.path.join(base, "exp")
        train_ids = sorted(set(read_id_list(name, os.path.join(exp, "train_id.txt")))
                           | set(read_id_list(name, os.path.join(exp, "val_id.txt"))))
        test_ids = read_id_list(name, os.path.join(exp, "test_id.txt"))
        for pid in train_ids + test_ids:
            if not any(os.path.isdir(os.path.join(base, f"cam{c}", f"{pid:04d}"))
                       for c in VISIBLE_CAMS + INFRARED_CAMS):
                raise DatasetLayoutError(name, os.path.join(base, "cam*", f"{pid:04d}"),
                                         f"identity {pid} listed in exp/*_id.txt to have an image folder "
                                         f"in at least one camera")

        train_visible = _collect(name, base, train_ids, VISIBLE_CAMS, VISIBLE, train=True)
        train_infrared = _collect(name, base, train_ids, INFRARED_CAMS, INFRARED, train=True)
        query = _collect(name, base, test_ids, INFRARED_CAMS, INFRARED, train=False)
        gallery = _collect(name, base, test_ids, self.gallery_cams, VISIBLE, train=False)
        for subset, samples in (("visible training", train_visible), ("infrared training", train_infrared),
                                ("query", query), ("gallery", gallery)):
            if not samples:
                raise DatasetLayoutError(name, base, f"at least one {subset} image")
        super().__init__(train_visible, train_infrared, query, gallery, **kwargs)


@DATASET_REGISTRY.register()
class SYSUMM01Indoor(SYSUMM01):
    """SYSU-MM01, indoor-search protocol (visible gallery of cams 1, 2 only)."""

    gallery_cams = INDOOR_CAMS
