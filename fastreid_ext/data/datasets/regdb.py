"""RegDB (Nguyen et al., Sensors 2017) with the 10 standard train/test splits.

    RegDB/
      Visible/<id>/*.bmp, Thermal/<id>/*.bmp
      idx/train_visible_{t}.txt, idx/train_thermal_{t}.txt,
      idx/test_visible_{t}.txt,  idx/test_thermal_{t}.txt      lines: "relative/path label"

Split ``t`` (1..10, ``DATASETS.REGDB.TRIAL``) trains on 206 identities and tests on the other
206. Training labels in the index files are never used as labels (kept for diagnostics).
The whole gallery is used; both directions are registered.
"""
import os

from fastreid.data.datasets import DATASET_REGISTRY

from .bases import INFRARED, VISIBLE, CrossModalityDataset, Sample, query_and_gallery, read_index_file, require

VISIBLE_CAM, THERMAL_CAM = 1, 2


@DATASET_REGISTRY.register()
class RegDB(CrossModalityDataset):
    """RegDB, visible query -> thermal gallery, split ``trial``."""

    dataset_dir = "RegDB"
    protocol = "regdb"
    query_modality = VISIBLE
    layout = "a RegDB/ folder with Visible/, Thermal/ and idx/ under DATASETS.ROOT"

    def __init__(self, root: str = "datasets", trial: int = 1, **kwargs):
        name = type(self).__name__
        if not 1 <= int(trial) <= 10:
            raise ValueError(f"{name}: DATASETS.REGDB.TRIAL must be in 1..10, got {trial}")
        base = self.dataset_folder(root)
        idx = require(name, os.path.join(base, "idx"), "the split index folder RegDB/idx/")

        def read(split, modality_name, modality, cam):
            entries = read_index_file(name, base, os.path.join(idx, f"{split}_{modality_name}_{trial}.txt"))
            if split == "train":
                return [Sample.for_training(p, cam, modality, label) for p, label in entries]
            return [Sample.for_test(p, label, cam, modality) for p, label in entries]

        train_visible = read("train", "visible", VISIBLE, VISIBLE_CAM)
        train_infrared = read("train", "thermal", INFRARED, THERMAL_CAM)
        test_visible = read("test", "visible", VISIBLE, VISIBLE_CAM)
        test_thermal = read("test", "thermal", INFRARED, THERMAL_CAM)
        query, gallery = query_and_gallery(test_visible, test_thermal, self.query_modality)
        self.trial = int(trial)
        super().__init__(train_visible, train_infrared, query, gallery, **kwargs)


@DATASET_REGISTRY.register()
class RegDBThermal2Visible(RegDB):
    """RegDB, thermal query -> visible gallery."""

    query_modality = INFRARED
