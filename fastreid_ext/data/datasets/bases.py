"""Common ground of the cross-modality data sets: sample records, layout errors, summaries."""
import logging
import os
from typing import List, NamedTuple, Sequence, Tuple

from fastreid.data.datasets.bases import ImageDataset
from tabulate import tabulate

logger = logging.getLogger(__name__)

VISIBLE, INFRARED = 0, 1
MODALITY_NAMES = {VISIBLE: "visible", INFRARED: "infrared"}
README_DATA = "README.md, section 'Data sets'"


class Sample(NamedTuple):
    """One image. ``pid`` is -1 for training images: an unsupervised method never sees their
    identity. ``true_pid`` keeps it for the pseudo-label diagnostics (cluster purity, matching
    accuracy) and for supervised baselines, which read it on purpose; test images carry their
    real ``pid``."""

    img_path: str
    pid: int
    camid: int
    modality: int  # 0 visible, 1 infrared
    true_pid: int = -1

    @classmethod
    def for_training(cls, img_path: str, camid: int, modality: int, true_pid: int = -1) -> "Sample":
        """A training image: its identity is hidden (``pid`` -1), kept as ``true_pid``."""
        return cls(img_path, -1, camid, modality, true_pid)

    @classmethod
    def for_test(cls, img_path: str, pid: int, camid: int, modality: int) -> "Sample":
        """A query or gallery image, with its identity."""
        return cls(img_path, pid, camid, modality)


class DatasetLayoutError(FileNotFoundError):
    """A data set on disk does not have the layout its reader expects."""

    def __init__(self, dataset: str, path: str, expected: str):
        super().__init__(
            f"{dataset}: {expected}, but {path!r} {'is missing' if not os.path.exists(path) else 'is not usable'}. "
            f"See {README_DATA} for how to obtain the data set and place it under DATASETS.ROOT.")
        self.path = path


def require(dataset: str, path: str, expected: str) -> str:
    """Return ``path`` if it exists, else raise a :class:`DatasetLayoutError` naming it."""
    if not os.path.exists(path):
        raise DatasetLayoutError(dataset, path, expected)
    return path


class CrossModalityDataset(ImageDataset):
    """A visible-infrared data set in fastreid's ``ImageDataset`` shape.

    Attributes:
        train_visible, train_infrared: training samples of each modality (``pid`` = -1).
        query, gallery: test samples; ``gallery`` holds every gallery *candidate*; protocols
            with a random gallery draw each trial's gallery from it.
        protocol: evaluation protocol name in ``fastreid_ext.evaluation`` ("sysu", ...).
        random_gallery: whether each trial draws one (or ``shots``) image per (id, camera).
        layout: what ``<root>/<dataset_dir>`` must hold, named by the error when it is missing.
    """

    protocol = ""
    random_gallery = False
    layout = ""

    def dataset_folder(self, root: str) -> str:
        """``<root>/<dataset_dir>``, or a :class:`DatasetLayoutError` naming it and :attr:`layout`."""
        return require(type(self).__name__, os.path.join(root, self.dataset_dir), self.layout)

    def __init__(self, train_visible: List[Sample], train_infrared: List[Sample],
                 query: List[Sample], gallery: List[Sample], **kwargs):
        self.train_visible = train_visible
        self.train_infrared = train_infrared
        super().__init__(train_visible + train_infrared, query, gallery, **kwargs)

    @property
    def dataset_name(self) -> str:
        return type(self).__name__

    def show_train(self) -> None:
        rows = [[MODALITY_NAMES[m], len(s), len({x.camid for x in s})]
                for m, s in ((VISIBLE, self.train_visible), (INFRARED, self.train_infrared))]
        logger.info("=> Loaded %s training set (identities hidden):\n%s", self.dataset_name,
                    tabulate(rows, headers=["modality", "# images", "# cameras"], tablefmt="pipe"))

    def show_test(self) -> None:
        rows = [[name, MODALITY_NAMES[s[0].modality] if s else "-", len({x.pid for x in s}), len(s),
                 len({x.camid for x in s})] for name, s in (("query", self.query), ("gallery", self.gallery))]
        logger.info("=> Loaded %s test set (protocol %s):\n%s", self.dataset_name, self.protocol,
                    tabulate(rows, headers=["subset", "modality", "# ids", "# images", "# cameras"],
                             tablefmt="pipe"))


def query_and_gallery(test_visible: List[Sample], test_infrared: List[Sample],
                      query_modality: int) -> Tuple[List[Sample], List[Sample]]:
    """(query, gallery): the test images of ``query_modality`` query the other modality's."""
    if query_modality == VISIBLE:
        return test_visible, test_infrared
    return test_infrared, test_visible


def read_id_list(dataset: str, path: str) -> List[int]:
    """Read a SYSU-MM01 style id file: comma-separated integers on one or more lines."""
    require(dataset, path, "an id list file (comma-separated identity numbers)")
    with open(path) as f:
        text = f.read().replace("\n", ",")
    try:
        return sorted({int(tok) for tok in text.split(",") if tok.strip()})
    except ValueError as err:
        raise DatasetLayoutError(dataset, path, f"comma-separated integers ({err})") from err


def read_index_file(dataset: str, root: str, path: str) -> List[tuple]:
    """Read an index file of ``relative/path label`` lines; returns (absolute path, label)."""
    require(dataset, path, "an index file of 'relative/image/path label' lines")
    entries = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise DatasetLayoutError(dataset, path,
                                         f"'relative/image/path label' on line {lineno}, got {line.strip()!r}")
            img_path = os.path.join(root, parts[0])
            require(dataset, img_path, f"the image listed on line {lineno} of {path}")
            entries.append((img_path, int(parts[1])))
    return entries


def sorted_images(folder: str) -> Sequence[str]:
    """Image files of a folder, sorted by name."""
    exts = (".jpg", ".jpeg", ".png", ".bmp")
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(exts))
