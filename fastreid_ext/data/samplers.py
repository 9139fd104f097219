"""Batch sampler for two-modality training with (pseudo) identity labels."""
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
from torch.utils.data import Sampler


class SeededIndex(int):
    """A sample index that carries the seed of its augmentation (``seed``): the dataset seeds
    its random transforms with it, so an image drawn at a given place of a given global batch
    is augmented the same whatever the number of processes, and whichever loader worker reads it."""

    def __new__(cls, index: int, seed: int):
        obj = super().__new__(cls, index)
        obj.seed = int(seed)
        return obj

    def __reduce__(self):  # pickled to loader workers with its seed
        return SeededIndex, (int(self), self.seed)


class CrossModalityIdentitySampler(Sampler):
    """Infinite batches of ``num_ids`` identities x ``num_instances`` images from *each*
    modality: first the visible part, then the infrared part.

    Indices refer to the concatenation ``visible samples + infrared samples``. Label -1
    (outliers) is never sampled. An identity with fewer than ``num_instances`` images is
    sampled with replacement; with fewer identities than ``num_ids``, identities repeat.
    :meth:`set_labels` replaces the labels (e.g. new pseudo labels each epoch); batches
    drawn afterwards use them.

    With ``cameras`` (the camera of every sample, same order), an identity's K images come
    from as many different cameras as it has (PGM's ``RandomMultipleGallerySampler``): one
    image per camera in random order, then a second per camera, and so on.

    Several processes: every rank draws the same global batch of ``num_ids`` identities from
    one stream (``seed``, the same on every rank) and takes its slice, identities
    ``[rank P / W, (rank + 1) P / W)`` of each modality, visible part first; every index is a
    :class:`SeededIndex` whose seed depends on ``seed``, the batch's number and the index's place
    in the global batch only. So 1 process with batch B and W processes with B / W each see the
    same images, augmented the same.

    Args:
        labels_visible, labels_infrared: per-sample (pseudo) labels of each modality.
        num_ids: identities per modality per global batch (P, over all processes).
        num_instances: images per identity (K).
        seed: seed of the random stream (the same on every rank).
        cameras: per-sample camera ids (visible samples first), for camera-aware batches.
        shared_ids: the P identities of a batch are the same in both modalities (labels that
            mean the same identity in both, e.g. true identities for supervised training).
        rank, world_size: this process's slice of the global batch.
    """

    def __init__(self, labels_visible: Sequence[int], labels_infrared: Sequence[int],
                 num_ids: int, num_instances: int, seed: int = 0, cameras: Optional[Sequence[int]] = None,
                 shared_ids: bool = False, rank: int = 0, world_size: int = 1):
        self.num_ids, self.num_instances, self.shared_ids = int(num_ids), int(num_instances), shared_ids
        if self.num_ids < 1 or self.num_instances < 1:
            raise ValueError(f"num_ids and num_instances must be >= 1, got {num_ids}, {num_instances}")
        if world_size < 1 or not 0 <= rank < world_size or self.num_ids % world_size:
            raise ValueError(f"num_ids ({num_ids}) must split evenly over world_size ({world_size}) processes, "
                             f"rank in [0, world_size), got rank {rank}")
        self.rank, self.world_size, self.seed = int(rank), int(world_size), int(seed)
        self.batches_drawn = 0  # global batches drawn so far, over every iterator (numbers the seeds)
        self.cameras = None if cameras is None else np.asarray(cameras)
        if self.cameras is not None and len(self.cameras) != len(labels_visible) + len(labels_infrared):
            raise ValueError(f"cameras must have one entry per sample ({len(labels_visible) + len(labels_infrared)}), "
                             f"got {len(self.cameras)}")
        self.set_labels(labels_visible, labels_infrared)
        self.rng = np.random.default_rng(seed)

    def set_labels(self, labels_visible: Sequence[int], labels_infrared: Sequence[int]) -> None:
        """Sample from these labels from now on (same sample order as before)."""
        by_label = [self._group(labels_visible, 0), self._group(labels_infrared, len(labels_visible))]
        for name, modality_groups in zip(("visible", "infrared"), by_label):
            if not modality_groups:
                raise ValueError(f"no labelled {name} sample to build batches from (all labels are -1)")
        self.groups = [list(groups.values()) for groups in by_label]
        if self.shared_ids:
            common = sorted(set(by_label[0]) & set(by_label[1]))
            if not common:
                raise ValueError("no label has samples in both modalities: shared-identity batches are impossible")
            self.shared = [(by_label[0][label], by_label[1][label]) for label in common]

    @staticmethod
    def _group(labels: Sequence[int], offset: int) -> Dict[int, np.ndarray]:
        labels = np.asarray(labels)
        return {int(label): np.flatnonzero(labels == label) + offset for label in np.unique(labels[labels >= 0])}

    @property
    def batch_size(self) -> int:
        """Images per batch of this process."""
        return 2 * self.num_ids * self.num_instances // self.world_size

    def _instances(self, members: np.ndarray) -> List[int]:
        """K images of one identity (with replacement when it has fewer)."""
        if self.cameras is None:
            return self.rng.choice(members, self.num_instances, replace=len(members) < self.num_instances).tolist()
        shuffled = members[self.rng.permutation(len(members))]
        cams = self.cameras[shuffled]
        # rank of each image among the shuffled images of its camera: cameras take turns
        rank = np.zeros(len(shuffled), dtype=np.int64)
        for cam in np.unique(cams):
            rank[cams == cam] = np.arange(int((cams == cam).sum()))
        ordered = shuffled[np.argsort(rank, kind="stable")].tolist()[: self.num_instances]
        missing = self.num_instances - len(ordered)
        return ordered + (self.rng.choice(members, missing).tolist() if missing > 0 else [])

    def _modality_batch(self, groups: List[np.ndarray]) -> List[int]:
        replace_ids = len(groups) < self.num_ids
        chosen = self.rng.choice(len(groups), self.num_ids, replace=replace_ids)
        batch = []
        for g in chosen:
            batch.extend(self._instances(groups[g]))
        return batch

    def _shared_batch(self) -> List[int]:
        chosen = self.rng.choice(len(self.shared), self.num_ids, replace=len(self.shared) < self.num_ids)
        return [i for modality in (0, 1) for c in chosen for i in self._instances(self.shared[c][modality])]

    def _global_batches(self) -> Iterator[List[int]]:
        while True:
            if self.shared_ids:
                yield self._shared_batch()
            else:
                yield self._modality_batch(self.groups[0]) + self._modality_batch(self.groups[1])

    def __iter__(self) -> Iterator[List[SeededIndex]]:
        half = self.num_ids * self.num_instances  # images of one modality in the global batch
        share = half // self.world_size
        mine = [p for part in (0, half) for p in range(part + self.rank * share, part + (self.rank + 1) * share)]
        for batch in self._global_batches():
            seeds = np.random.SeedSequence([self.seed, self.batches_drawn]).generate_state(2 * half, dtype=np.uint64)
            self.batches_drawn += 1
            yield [SeededIndex(batch[p], seeds[p] % 2 ** 63) for p in mine]
