"""The alternating loop of clustering-based unsupervised cross-modality methods, as a fastreid
hook: before each epoch, extract every training image's features, cluster each modality, take
the prototypes, run the method's own step (cross-modality matching of the prototypes; per-modality
ClusterContrast: nothing), broadcast rank 0's result and apply it; log its quality and the time
of each phase.

A method plugs in with three pieces:

- a model that is a :class:`PseudoLabelModel`: ``set_targets(targets)`` is the one way the
  epoch's targets reach it (labels, memories, whatever its method step added), and
  ``apply_updates()`` runs after each optimizer step (e.g. momentum updates of memories);
- a :class:`PseudoLabelLoop` subclass overriding :meth:`PseudoLabelLoop.method_step` (and, for
  extra diagnostics, :meth:`PseudoLabelLoop.metrics`), with an :class:`EpochTargets` subclass
  when the step adds fields;
- a :class:`~fastreid_ext.engine.pseudo_trainer.PseudoLabelTrainer` subclass saying which loop
  and which settings (:class:`LoopSettings`) it uses.
"""
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np
import torch
from fastreid.engine import HookBase
from fastreid.utils import comm
from torch import nn

from ..cluster import dbscan_labels, prototypes_of
from ..cluster.diagnostics import cluster_purity, identity_alignment
from ..compat import restart_data_iterator
from ..data import build_inference_loader
from .extract import ImageBatchCache, extract_features, unwrap

logger = logging.getLogger(__name__)

CLUSTER_PHASES = ("knn", "jaccard", "dbscan")  # summed into the "cluster" phase


@dataclass(frozen=True)
class ClusterSettings:
    """DBSCAN on the k-reciprocal Jaccard distance, per modality (ClusterContrast / PGM)."""

    eps: float = 0.6  # DBSCAN radius on the Jaccard distance
    min_samples: int = 4  # DBSCAN core-point size
    k1: int = 30  # k-reciprocal neighbourhood
    k2: int = 6  # local query expansion
    knn_backend: str = "auto"  # see fastreid_ext.cluster.knn.resolve_backend
    jaccard_backend: str = "auto"  # scipy | torch | auto (torch on the model's CUDA device)
    keys: str = "CLUSTER"  # the config node these come from (EPS, K1, ...), named in messages

    @classmethod
    def from_config(cls, cfg, keys: str) -> "ClusterSettings":
        """The settings under the config node ``keys`` (a project's ``"<PROJECT>.CLUSTER"``):
        ``EPS``, ``MIN_SAMPLES``, ``K1``, ``K2`` and, where the node has them, ``KNN_BACKEND`` and
        ``JACCARD_BACKEND``."""
        node = cfg
        for part in keys.split("."):
            node = node[part]
        optional = {name: node[key] for name, key in (("knn_backend", "KNN_BACKEND"),
                                                       ("jaccard_backend", "JACCARD_BACKEND")) if key in node}
        return cls(eps=node.EPS, min_samples=node.MIN_SAMPLES, k1=node.K1, k2=node.K2, keys=keys, **optional)


@dataclass(frozen=True)
class LoopSettings:
    """What the loop does each epoch, as a project's config sets it."""

    cluster: ClusterSettings
    extract_flip: bool = True  # flip-averaged features
    extract_batch: int = 128  # images per extraction batch
    cache_mb: float = 0.0  # memory for the decoded test-time images (0: decode every epoch)
    diagnostics: bool = True  # purity / alignment against true identities where the data set has them
    progress: str = "auto"  # tqdm bars: auto (on a terminal only), on, off
    keys: str = ""  # the config node of EXTRACT_BATCH and EXTRACT_CACHE_MB, named in messages


@dataclass
class EpochTargets:
    """The targets of one epoch: per-modality pseudo labels and prototypes.

    Attributes:
        epoch: the epoch they were computed for.
        labels_visible: (Nv,) cluster of each visible training image, -1 = outlier.
        labels_infrared: (Nr,) likewise for the infrared images.
        prototypes_visible: (Kv, D) L2-normalised cluster means.
        prototypes_infrared: (Kr, D).
        timings: seconds of each phase, for the log; not checkpointed.
    """

    epoch: int
    labels_visible: np.ndarray
    labels_infrared: np.ndarray
    prototypes_visible: torch.Tensor
    prototypes_infrared: torch.Tensor
    timings: Dict[str, float] = field(default_factory=dict)

    def labels(self) -> torch.Tensor:
        """(Nv + Nr,) pseudo label of every training image, visible first."""
        return torch.cat([torch.as_tensor(self.labels_visible, dtype=torch.long),
                          torch.as_tensor(self.labels_infrared, dtype=torch.long)])

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """Tensors only (checkpointable with ``torch.load(weights_only=True)``); copies."""
        return {
            "epoch": torch.tensor(self.epoch),
            "labels_visible": torch.as_tensor(self.labels_visible, dtype=torch.long).clone(),
            "labels_infrared": torch.as_tensor(self.labels_infrared, dtype=torch.long).clone(),
            "prototypes_visible": self.prototypes_visible.detach().cpu().clone(),
            "prototypes_infrared": self.prototypes_infrared.detach().cpu().clone(),
        }

    @classmethod
    def from_state_dict(cls, state: Dict[str, torch.Tensor]) -> "EpochTargets":
        """The inverse of :meth:`state_dict`."""
        return cls(**cls._common_fields(state))

    @staticmethod
    def _common_fields(state: Dict[str, torch.Tensor]) -> Dict:
        required = ["epoch", "labels_visible", "labels_infrared", "prototypes_visible", "prototypes_infrared"]
        missing = [key for key in required if key not in state]
        if missing:
            raise KeyError(f"the checkpoint's pseudo-label loop state lacks {missing} (it has {sorted(state)}); it "
                           f"was written by another version: start without --resume, from MODEL.WEIGHTS")
        return dict(epoch=int(state["epoch"]), labels_visible=state["labels_visible"].numpy(),
                    labels_infrared=state["labels_infrared"].numpy(),
                    prototypes_visible=state["prototypes_visible"], prototypes_infrared=state["prototypes_infrared"])


class PseudoLabelModel(nn.Module):
    """A model the loop trains: it takes each epoch's targets through :meth:`set_targets`."""

    def set_targets(self, targets: EpochTargets) -> None:
        """Make ``targets`` this epoch's training targets (the only writer of them)."""
        raise NotImplementedError(f"{type(self).__name__} must implement set_targets(targets)")

    def apply_updates(self) -> None:
        """Called after every optimizer step (e.g. memories' momentum updates); nothing by default."""


def cluster_modality(features: torch.Tensor, modality: int, settings: ClusterSettings, num_ids: int,
                     previous_labels: Optional[np.ndarray] = None, progress: bool = False,
                     timings: Optional[Dict[str, float]] = None) -> np.ndarray:
    """(N,) DBSCAN pseudo labels of one modality's (N, D) features, with the fallbacks: no
    cluster at all keeps ``previous_labels`` (or, on the first epoch, one label per image).
    Clusterings a batch cannot use well (fewer clusters than ``num_ids`` identities per batch,
    one cluster holding most images) are logged. Phase times are added to ``timings``."""
    s = settings
    try:
        labels = dbscan_labels(features, eps=s.eps, min_samples=s.min_samples, k1=s.k1, k2=s.k2,
                               knn_backend=s.knn_backend, progress=progress, timings=timings,
                               jaccard_backend=s.jaccard_backend)
    except (torch.cuda.OutOfMemoryError, MemoryError) as err:
        raise MemoryError(f"out of memory while clustering {len(features)} features of modality {modality}: "
                          f"lower {s.keys}.K1 (now {s.k1}), set {s.keys}.KNN_BACKEND faiss (CPU) instead of "
                          f"{s.knn_backend} or {s.keys}.JACCARD_BACKEND scipy instead of {s.jaccard_backend}") from err
    if labels.max() < 0:
        if previous_labels is not None:
            logger.warning("modality %d: no cluster this epoch; keeping the previous epoch's labels", modality)
            return np.asarray(previous_labels)
        logger.warning("modality %d: no cluster; training on one label per image this epoch "
                       "(consider a larger %s.EPS)", modality, s.keys)
        return np.arange(len(labels))
    sizes = np.bincount(labels[labels >= 0])
    if len(sizes) < num_ids:
        logger.warning("modality %d: %d clusters, fewer than the %d identities a batch asks for; "
                       "the sampler repeats identities", modality, len(sizes), num_ids)
    if sizes.max() > 0.5 * len(labels):
        logger.warning("modality %d: one cluster holds %d of %d images; consider a smaller %s.EPS",
                       modality, sizes.max(), len(labels), s.keys)
    return labels


def cluster_each_modality(features: torch.Tensor, num_visible: int, epoch: int, settings: ClusterSettings,
                          num_ids: int, previous: Optional[EpochTargets] = None,
                          progress: bool = False) -> EpochTargets:
    """Cluster the visible (first ``num_visible``) and infrared rows of (N, D) ``features``
    separately and take each cluster's prototype (the L2-normalised mean, on the CPU)."""
    parts = {0: features[:num_visible], 1: features[num_visible:]}
    previous_labels = {0: previous.labels_visible, 1: previous.labels_infrared} if previous is not None else {}
    timings: Dict[str, float] = {}
    labels = {m: cluster_modality(parts[m], m, settings, num_ids, previous_labels.get(m), progress, timings)
              for m in parts}
    prototypes = {m: prototypes_of(parts[m].cpu(), labels[m]) for m in parts}
    timings["cluster"] = sum(timings.get(phase, 0.0) for phase in CLUSTER_PHASES)
    return EpochTargets(epoch, labels[0], labels[1], prototypes[0], prototypes[1], timings)


def cluster_metrics(targets: EpochTargets, features: torch.Tensor, train_set, diagnostics: bool) -> Dict[str, float]:
    """Clusters and outliers per modality; with ``diagnostics`` and a training set that knows its
    true identities, each modality's cluster purity and the features' identity alignment."""
    labels_v, labels_r = targets.labels_visible, targets.labels_infrared
    metrics = {
        "clusters_visible": int(labels_v.max() + 1), "clusters_infrared": int(labels_r.max() + 1),
        "outliers_visible": int((labels_v < 0).sum()), "outliers_infrared": int((labels_r < 0).sum()),
    }
    if diagnostics and train_set.has_diagnostic_ids:
        num_visible = train_set.num_visible
        ids_v, ids_r = train_set.diagnostic_ids(0), train_set.diagnostic_ids(1)
        metrics["purity_visible"] = cluster_purity(labels_v, ids_v)
        metrics["purity_infrared"] = cluster_purity(labels_r, ids_r)
        features = features.cpu().numpy()
        metrics["identity_alignment"] = identity_alignment(features[:num_visible], ids_v, features[num_visible:], ids_r)
    return metrics


def format_split(timings: Dict[str, float]) -> str:
    """``extract 1.2 s, cluster 0.3 s, match 0.0 s, train 9.1 s``: the main phases, in order."""
    return ", ".join(f"{phase} {timings[phase]:.1f} s" for phase in ("extract", "cluster", "match", "train")
                     if phase in timings)


class PseudoLabelLoop(HookBase):
    """Re-clusters before every epoch and applies the result; after every step calls the
    model's ``apply_updates``.

    ``before_epoch``: every rank extracts its share of the features; rank 0 clusters each
    modality (:func:`cluster_each_modality`), runs :meth:`method_step` and broadcasts the
    targets; every rank applies them (:meth:`apply`). ``after_epoch`` logs the epoch's time
    split (extract / cluster / match / train) and puts ``time_*`` scalars in the storage.

    Checkpointed with the model (register it as a checkpointable): its state is the targets
    applied at the start of the last epoch; loading applies them again, and a resumed run uses
    them as the previous labels of its first clustering's fallback.

    Args:
        cfg: the run's config (extraction loader: ``INPUT.SIZE_TEST``, ``DATALOADER.NUM_WORKERS``).
        settings: the loop's settings.
        train_set: a :class:`~fastreid_ext.data.PseudoLabelledTrainSet` (visible first).
        sampler: the loader's batch sampler (``set_labels``, ``num_ids``).
    """

    targets_class = EpochTargets  # what load_state_dict rebuilds
    step_phase = "match"  # the name under which method_step's seconds are logged

    def __init__(self, cfg, settings: LoopSettings, train_set, sampler):
        self.cfg = cfg
        self.settings = settings
        self.train_set = train_set
        self.sampler = sampler
        self.current: Optional[EpochTargets] = None
        self.cache = ImageBatchCache(settings.cache_mb, self._key("EXTRACT_CACHE_MB"))
        self._pending_metrics: Dict[str, float] = {}
        self._train_started: Optional[float] = None

    # ---------------------------------------------------------------- the method's part
    def method_step(self, targets: EpochTargets) -> EpochTargets:
        """The method's own step on rank 0, between clustering and applying: returns the
        epoch's targets (an :class:`EpochTargets`, or a subclass with more fields). The
        clustering's targets unchanged by default (intra-modality methods)."""
        return targets

    def metrics(self, targets: EpochTargets, features: torch.Tensor) -> Dict[str, float]:
        """Per-epoch metrics logged with the phase times: :func:`cluster_metrics` by default."""
        return cluster_metrics(targets, features, self.train_set, self.settings.diagnostics)

    # ----------------------------------------------------------------------- the loop
    def targets_for_epoch(self, features: torch.Tensor, epoch: int) -> EpochTargets:
        """Clustering, then :meth:`method_step`, with the seconds of each phase."""
        model_device = next(unwrap(self.trainer.model).parameters()).device
        device = model_device if self.settings.cluster.jaccard_backend != "scipy" else "cpu"
        clustered = cluster_each_modality(features.to(device), self.train_set.num_visible, epoch,
                                          self.settings.cluster, self.sampler.num_ids, previous=self.current,
                                          progress=self._progress())
        start = time.perf_counter()
        targets = self.method_step(clustered)
        targets.timings = dict(clustered.timings, **{self.step_phase: time.perf_counter() - start})
        return targets

    def before_epoch(self):
        start = time.perf_counter()
        features = self._extract(unwrap(self.trainer.model))
        extract_seconds = time.perf_counter() - start
        targets = None
        if comm.is_main_process():
            targets = self.targets_for_epoch(features, self.trainer.epoch)
            targets.timings["extract"] = extract_seconds
        if comm.get_world_size() > 1:
            targets = comm.all_gather(targets)[0]  # rank 0's result, on every rank
        self.apply(targets)
        # data-loader workers prefetched batches from the old labels: restart them (costs one
        # worker start-up per epoch; a loader without workers prefetches nothing and is left alone)
        restart_data_iterator(self.trainer)
        if comm.is_main_process():
            metrics = self.metrics(targets, features)
            metrics.update({f"time_{phase}": seconds for phase, seconds in targets.timings.items()})
            self._pending_metrics = metrics
            logger.info("epoch %d pseudo labels: %s", targets.epoch,
                        ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if not k.startswith("time_")))
        self._train_started = time.perf_counter()

    def after_epoch(self):
        if self.current is None or self._train_started is None:
            return
        timings = dict(self.current.timings, train=time.perf_counter() - self._train_started)
        self.trainer.storage.put_scalar("time_train", timings["train"], smoothing_hint=False)
        if comm.is_main_process():
            logger.info("epoch %d time: %s", self.trainer.epoch, format_split(timings))

    def _key(self, name: str) -> str:
        return f"{self.settings.keys}.{name}" if self.settings.keys else name

    def _progress(self) -> bool:
        """tqdm on rank 0: ``auto`` shows it on a terminal only (quiet in CI and logs)."""
        setting = self.settings.progress
        return comm.is_main_process() and (setting == "on" or (setting == "auto" and sys.stderr.isatty()))

    def _extract(self, model) -> torch.Tensor:
        """(N, D) features of every training image, each rank embedding a contiguous share."""
        s = self.settings
        samples, world, rank = self.train_set.samples, comm.get_world_size(), comm.get_rank()
        share = (len(samples) + world - 1) // world
        try:
            batches = None
            if not self.cache.filled:
                batches = build_inference_loader(self.cfg, samples[rank * share:(rank + 1) * share],
                                                 batch_size=s.extract_batch)
            features = extract_features(model, self.cache.batches(batches), s.extract_flip, progress=self._progress())
            if world > 1:
                features = torch.cat(comm.all_gather(features))
        except (torch.cuda.OutOfMemoryError, MemoryError) as err:
            raise MemoryError(f"out of memory while extracting features for clustering: lower "
                              f"{self._key('EXTRACT_BATCH')} (now {s.extract_batch}) or "
                              f"DATALOADER.NUM_WORKERS") from err
        bad = int((~torch.isfinite(features).all(dim=1)).sum())
        if bad:
            raise FloatingPointError(f"non-finite features for {bad} of {len(features)} training images before "
                                     f"clustering: the model has diverged; resume from the last checkpoint with a "
                                     f"lower SOLVER.BASE_LR")
        return features

    def apply(self, targets: EpochTargets) -> None:
        """Make ``targets`` the training targets: the model takes them, the sampler draws their clusters."""
        unwrap(self.trainer.model).set_targets(targets)
        self.sampler.set_labels(targets.labels_visible, targets.labels_infrared)
        self.current = targets

    def before_step(self):
        # logged at the epoch's first iteration, so that each epoch's metrics carry that
        # epoch's iteration (at before_epoch, storage.iter is still the previous epoch's last)
        for key, value in self._pending_metrics.items():
            self.trainer.storage.put_scalar(key, value, smoothing_hint=False)
        self._pending_metrics = {}

    def after_step(self):
        unwrap(self.trainer.model).apply_updates()

    # ------------------------------------------------------------------- checkpointing
    def state_dict(self) -> Dict[str, torch.Tensor]:
        return self.current.state_dict() if self.current is not None else {}

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        """The inverse of :meth:`state_dict`: apply the saved targets again."""
        if state:
            self.apply(self.targets_class.from_state_dict(state))
