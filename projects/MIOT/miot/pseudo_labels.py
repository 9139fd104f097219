"""One epoch's training targets: cluster each modality, fall back where clustering fails, take
the prototypes and match them across modalities.

:func:`pseudo_labels_for_epoch` is the policy (a plain function: features in, targets out);
:class:`PseudoLabels` is its result, which the loop hook applies to the model, memories and
sampler, broadcasts to every rank and checkpoints.
"""
import logging
import time
from dataclasses import dataclass, field, fields
from typing import Dict, Optional

import numpy as np
import torch
from fastreid.config import CfgNode

from fastreid_ext.cluster import dbscan_labels, prototypes_of
from fastreid_ext.matching import CrossModalMatches, match_prototypes

logger = logging.getLogger(__name__)

_MATCH_FIELDS = [f.name for f in fields(CrossModalMatches)]
_MATCH_SCALARS = ("iterations", "marginal_error")


@dataclass
class PseudoLabels:
    """The targets of one epoch.

    Attributes:
        epoch: the epoch they were computed for.
        labels_visible: (Nv,) cluster of each visible training image, -1 = outlier.
        labels_infrared: (Nr,) likewise for the infrared images.
        prototypes_visible: (Kv, D) L2-normalised cluster means; the memories start from them.
        prototypes_infrared: (Kr, D).
        matches: visible (A) <-> infrared (B) cluster matches; None in an intra-only epoch.
        timings: seconds of each phase ("extract", "knn", "jaccard", "dbscan", "match"), for
            the log; not checkpointed.
    """

    epoch: int
    labels_visible: np.ndarray
    labels_infrared: np.ndarray
    prototypes_visible: torch.Tensor
    prototypes_infrared: torch.Tensor
    matches: Optional[CrossModalMatches] = None
    timings: Dict[str, float] = field(default_factory=dict)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """Tensors only (checkpointable with ``torch.load(weights_only=True)``); copies, never
        views of the memories."""
        state = {
            "epoch": torch.tensor(self.epoch),
            "labels_visible": torch.as_tensor(self.labels_visible, dtype=torch.long).clone(),
            "labels_infrared": torch.as_tensor(self.labels_infrared, dtype=torch.long).clone(),
            "prototypes_visible": self.prototypes_visible.detach().cpu().clone(),
            "prototypes_infrared": self.prototypes_infrared.detach().cpu().clone(),
        }
        if self.matches is not None:
            for name in _MATCH_FIELDS:
                value = getattr(self.matches, name)
                if isinstance(value, torch.Tensor):
                    state[f"matches.{name}"] = value.detach().cpu().clone()
                elif value is not None:  # a solver's iterations or marginal error
                    state[f"matches.{name}"] = torch.tensor(value)
        return state

    @classmethod
    def from_state_dict(cls, state: Dict[str, torch.Tensor]) -> "PseudoLabels":
        """The inverse of :meth:`state_dict`."""
        required = ["epoch", "labels_visible", "labels_infrared", "prototypes_visible", "prototypes_infrared"]
        missing = [key for key in required if key not in state]
        if missing:
            raise KeyError(f"the checkpoint's MIOT loop state lacks {missing} (it has {sorted(state)}); it was "
                           f"written by another version: start without --resume, from MODEL.WEIGHTS")
        matches = None
        if "matches.a_to_b" in state:
            values = {name: state.get(f"matches.{name}") for name in _MATCH_FIELDS}
            for name in _MATCH_SCALARS:
                values[name] = values[name].item() if values[name] is not None else None
            matches = CrossModalMatches(**values)
        return cls(int(state["epoch"]), state["labels_visible"].numpy(), state["labels_infrared"].numpy(),
                   state["prototypes_visible"], state["prototypes_infrared"], matches)


def cluster_modality(features: torch.Tensor, modality: int, cfg: CfgNode, num_ids: int,
                     previous_labels: Optional[np.ndarray] = None, progress: bool = False,
                     timings: Optional[Dict[str, float]] = None) -> np.ndarray:
    """(N,) DBSCAN pseudo labels of one modality's (N, D) features, with the fallbacks: no
    cluster at all keeps ``previous_labels`` (or, on the first epoch, one label per image).
    Clusterings a batch cannot use well (fewer clusters than ``num_ids`` identities per batch,
    one cluster holding most images) are logged. Phase times are added to ``timings``."""
    c = cfg.MIOT.CLUSTER
    try:
        labels = dbscan_labels(features.numpy(), eps=c.EPS, min_samples=c.MIN_SAMPLES, k1=c.K1, k2=c.K2,
                               knn_backend=c.KNN_BACKEND, progress=progress, timings=timings)
    except (torch.cuda.OutOfMemoryError, MemoryError) as err:
        raise MemoryError(f"out of memory while clustering {len(features)} features of modality {modality}: "
                          f"lower MIOT.CLUSTER.K1 (now {c.K1}) or set MIOT.CLUSTER.KNN_BACKEND faiss "
                          f"(CPU) instead of {c.KNN_BACKEND}") from err
    if labels.max() < 0:
        if previous_labels is not None:
            logger.warning("modality %d: no cluster this epoch; keeping the previous epoch's labels", modality)
            return np.asarray(previous_labels)
        logger.warning("modality %d: no cluster; training on one label per image this epoch "
                       "(consider a larger MIOT.CLUSTER.EPS)", modality)
        return np.arange(len(labels))
    sizes = np.bincount(labels[labels >= 0])
    if len(sizes) < num_ids:
        logger.warning("modality %d: %d clusters, fewer than the %d identities a batch asks for; "
                       "the sampler repeats identities", modality, len(sizes), num_ids)
    if sizes.max() > 0.5 * len(labels):
        logger.warning("modality %d: one cluster holds %d of %d images; consider a smaller MIOT.CLUSTER.EPS",
                       modality, sizes.max(), len(labels))
    return labels


def matching_starts_at(cfg: CfgNode) -> int:
    """First epoch with cross-modality matching: after ``MIOT.WARMUP_RATIO`` of the epochs."""
    return int(round(cfg.MIOT.WARMUP_RATIO * cfg.SOLVER.MAX_EPOCH))


def pseudo_labels_for_epoch(features: torch.Tensor, num_visible: int, epoch: int, cfg: CfgNode, num_ids: int,
                            previous: Optional[PseudoLabels] = None, progress: bool = False) -> PseudoLabels:
    """Cluster each modality, take the prototypes and (after the warm-up, unless
    ``MIOT.MATCHER.NAME`` is ``none``) match them with the configured matcher.

    Args:
        features: (N, D) L2-normalised features, the ``num_visible`` visible images first.
        epoch: the epoch these targets are for.
        cfg: the full config (``MIOT.*`` and ``SOLVER.MAX_EPOCH``).
        num_ids: pseudo identities per modality in a batch (for the degenerate-clustering log).
        previous: the last epoch's targets, for the fallback when a modality finds no cluster.
    """
    parts = {0: features[:num_visible], 1: features[num_visible:]}
    previous_labels = {0: previous.labels_visible, 1: previous.labels_infrared} if previous is not None else {}
    timings: Dict[str, float] = {}
    labels = {m: cluster_modality(parts[m], m, cfg, num_ids, previous_labels.get(m), progress, timings)
              for m in parts}
    prototypes = {m: prototypes_of(parts[m], labels[m]) for m in parts}
    m = cfg.MIOT.MATCHER
    matches = None
    if m.NAME.lower() != "none" and epoch >= matching_starts_at(cfg):
        start = time.perf_counter()
        matches = match_prototypes(prototypes[0], prototypes[1], method=m.NAME, reg=m.REG, max_iter=m.MAX_ITER,
                                   tol=m.TOL, threshold=m.THRESHOLD)
        timings["match"] = time.perf_counter() - start
    return PseudoLabels(epoch, labels[0], labels[1], prototypes[0], prototypes[1], matches, timings)
