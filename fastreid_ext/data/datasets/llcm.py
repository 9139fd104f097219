"""LLCM (Zhang & Wang, CVPR 2023), low-light cross-modality.

    LLCM/
      idx/train_vis.txt, idx/train_nir.txt, idx/test_vis.txt, idx/test_nir.txt
          lines: "relative/path label"; the camera is the number after "_c" in the file name
          (e.g. nir/0001/0001_c04_s183003_f3910_nir.jpg -> camera 4)

Both directions are registered; each trial keeps one random gallery image per
(identity, camera), as in the data set's evaluation code.
"""
import os
import re

from fastreid.data.datasets import DATASET_REGISTRY

from .bases import (INFRARED, VISIBLE, CrossModalityDataset, DatasetLayoutError, Sample, query_and_gallery,
                    read_index_file)

_CAMERA = re.compile(r"_c0*(\d+)")


def _camera(dataset: str, path: str) -> int:
    match = _CAMERA.search(os.path.basename(path))
    if match is None:
        raise DatasetLayoutError(dataset, path, "an LLCM file name with its camera as '_cNN'")
    return int(match.group(1))


@DATASET_REGISTRY.register()
class LLCM(CrossModalityDataset):
    """LLCM, infrared query -> visible gallery."""

    dataset_dir = "LLCM"
    protocol = "llcm"
    random_gallery = True
    query_modality = INFRARED
    layout = "an LLCM/ folder with idx/ and the image folders under DATASETS.ROOT"

    def __init__(self, root: str = "datasets", **kwargs):
        name, base = type(self).__name__, self.dataset_folder(root)

        def read(split, modality_name, modality):
            entries = read_index_file(name, base, os.path.join(base, "idx", f"{split}_{modality_name}.txt"))
            if split == "train":
                return [Sample.for_training(p, _camera(name, p), modality, label) for p, label in entries]
            return [Sample.for_test(p, label, _camera(name, p), modality) for p, label in entries]

        train_visible, train_infrared = read("train", "vis", VISIBLE), read("train", "nir", INFRARED)
        test_visible, test_infrared = read("test", "vis", VISIBLE), read("test", "nir", INFRARED)
        query, gallery = query_and_gallery(test_visible, test_infrared, self.query_modality)
        super().__init__(train_visible, train_infrared, query, gallery, **kwargs)


@DATASET_REGISTRY.register()
class LLCMVisible2Infrared(LLCM):
    """LLCM, visible query -> infrared gallery."""

    query_modality = VISIBLE
