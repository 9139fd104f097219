"""The MIOT alternating loop as a fastreid hook: before each epoch, extract features of both
modalities, cluster each, compute prototypes, match them, relabel, reset the memories."""
import logging
import sys
from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F
from fastreid.engine import HookBase
from fastreid.utils import comm
from tqdm import tqdm

from fastreid_ext.cluster import dbscan_labels
from fastreid_ext.data import build_inference_loader
from fastreid_ext.matching import match_prototypes

from .diagnostics import cluster_purity, identity_alignment, matching_accuracy
from .meta_arch import transfer_maps

logger = logging.getLogger(__name__)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


@torch.no_grad()
def extract_features(model: torch.nn.Module, loader, flip: bool, progress: bool = False) -> torch.Tensor:
    """(N, D) L2-normalised (flip-averaged) embeddings of a loader's images, in order, on CPU."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for batch in tqdm(loader, desc="extract", disable=not progress, leave=False):
            features = model(batch)
            if flip:
                features = features + model(dict(batch, images=batch["images"].flip(dims=[3])))
            out.append(F.normalize(features, dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def prototypes_of(features: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    """(K, D) L2-normalised means of each cluster 0..K-1 (label -1 ignored)."""
    num = int(labels.max()) + 1
    labels_t = torch.as_tensor(labels)
    keep = labels_t >= 0
    sums = torch.zeros(num, features.shape[1]).index_add_(0, labels_t[keep], features[keep])
    return F.normalize(sums, dim=1)


class MIOTLoopHook(HookBase):
    """Re-clusters and re-matches before every epoch, and is checkpointed with the model.

    Fallbacks (logged): a modality where DBSCAN finds no cluster keeps the previous epoch's
    labels, or on the first epoch uses one label per image. During warm-up, or with
    ``MIOT.MATCHER.NAME none``, the epoch trains the intra term only. After every step it
    applies the memories' queued momentum updates (on every rank alike).
    """

    def __init__(self, cfg, train_set, sampler):
        self.cfg = cfg
        self.train_set = train_set  # visible samples first, then infrared
        self.sampler = sampler
        self.num_visible = train_set.num_visible
        self.warmup_epochs = int(round(cfg.MIOT.WARMUP_RATIO * cfg.SOLVER.MAX_EPOCH))
        self.state: Dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------------ the loop
    def before_epoch(self):
        """Every rank extracts its share of the features; rank 0 clusters and matches once and
        broadcasts the result, so that every rank holds the same labels, memories and matches."""
        epoch = self.trainer.epoch
        model = unwrap(self.trainer.model)
        features = self._extract(model)
        result = self._pseudo_labels(features, epoch) if comm.is_main_process() else None
        if comm.get_world_size() > 1:
            result = comm.all_gather(result)[0]  # rank 0's result, on every rank
        labels_v, labels_r, protos_v, protos_r, matches = result
        self._apply(model, labels_v, labels_r, protos_v, protos_r, matches, epoch)
        if comm.is_main_process():
            self._log(features, labels_v, labels_r, matches, epoch)

    def _progress(self) -> bool:
        """tqdm on rank 0: ``PROGRESS auto`` shows it on a terminal only (quiet in CI and logs)."""
        setting = self.cfg.get("PROGRESS", "auto")
        return comm.is_main_process() and (setting == "on" or (setting == "auto" and sys.stderr.isatty()))

    def _pseudo_labels(self, features: torch.Tensor, epoch: int):
        labels_v = self._cluster(features[: self.num_visible], 0)
        labels_r = self._cluster(features[self.num_visible:], 1)
        protos_v = prototypes_of(features[: self.num_visible], labels_v)
        protos_r = prototypes_of(features[self.num_visible:], labels_r)
        return labels_v, labels_r, protos_v, protos_r, self._match(protos_v, protos_r, epoch)

    def _extract(self, model) -> torch.Tensor:
        """(N, D) features of every training image, each rank embedding a contiguous share."""
        cfg = self.cfg
        samples, world, rank = self.train_set.samples, comm.get_world_size(), comm.get_rank()
        share = (len(samples) + world - 1) // world
        loader = build_inference_loader(cfg, samples[rank * share:(rank + 1) * share], batch_size=cfg.MIOT.EXTRACT_BATCH)
        try:
            features = extract_features(model, loader, cfg.MIOT.EXTRACT_FLIP, progress=self._progress())
            if world > 1:
                features = torch.cat(comm.all_gather(features))
        except (torch.cuda.OutOfMemoryError, MemoryError) as err:
            raise MemoryError(f"out of memory while extracting features for clustering: lower "
                              f"MIOT.EXTRACT_BATCH (now {cfg.MIOT.EXTRACT_BATCH}) or DATALOADER.NUM_WORKERS") from err
        bad = int((~torch.isfinite(features).all(dim=1)).sum())
        if bad:
            raise FloatingPointError(f"non-finite features for {bad} of {len(features)} training images before "
                                     f"clustering: the model has diverged; resume from the last checkpoint with a "
                                     f"lower SOLVER.BASE_LR")
        return features

    def _cluster(self, features: torch.Tensor, modality: int) -> np.ndarray:
        c = self.cfg.MIOT.CLUSTER
        try:
            labels = dbscan_labels(features.numpy(), eps=c.EPS, min_samples=c.MIN_SAMPLES, k1=c.K1, k2=c.K2,
                                   knn_backend=c.KNN_BACKEND, progress=self._progress())
        except (torch.cuda.OutOfMemoryError, MemoryError) as err:
            raise MemoryError(f"out of memory while clustering {len(features)} features of modality {modality}: "
                              f"lower MIOT.CLUSTER.K1 (now {c.K1}) or set MIOT.CLUSTER.KNN_BACKEND faiss "
                              f"(CPU) instead of {c.KNN_BACKEND}") from err
        if labels.max() < 0:
            key = "labels_visible" if modality == 0 else "labels_infrared"
            if key in self.state:
                logger.warning("modality %d: no cluster this epoch; keeping the previous epoch's labels", modality)
                return self.state[key].numpy()
            logger.warning("modality %d: no cluster; training on one label per image this epoch "
                           "(consider a larger MIOT.CLUSTER.EPS)", modality)
            return np.arange(len(labels))
        self._warn_if_degenerate(labels, modality)
        return labels

    def _warn_if_degenerate(self, labels: np.ndarray, modality: int) -> None:
        num_ids = self.sampler.num_ids
        sizes = np.bincount(labels[labels >= 0])
        if len(sizes) < num_ids:
            logger.warning("modality %d: %d clusters, fewer than the %d identities a batch asks for; "
                           "the sampler repeats identities", modality, len(sizes), num_ids)
        if sizes.max() > 0.5 * len(labels):
            logger.warning("modality %d: one cluster holds %d of %d images; consider a smaller MIOT.CLUSTER.EPS",
                           modality, sizes.max(), len(labels))

    def _match(self, protos_v: torch.Tensor, protos_r: torch.Tensor, epoch: int):
        m = self.cfg.MIOT.MATCHER
        if m.NAME.lower() == "none" or epoch < self.warmup_epochs:
            return None
        return match_prototypes(protos_v, protos_r, method=m.NAME, reg=m.REG, max_iter=m.MAX_ITER, tol=m.TOL,
                                threshold=m.THRESHOLD)

    def _apply(self, model, labels_v, labels_r, protos_v, protos_r, matches, epoch: int) -> None:
        cfg = self.cfg.MIOT
        labels = torch.as_tensor(np.concatenate([labels_v, labels_r]), dtype=torch.long)
        model.memory_visible.reset(protos_v)
        model.memory_infrared.reset(protos_r)
        model.set_pseudo_labels(labels)
        kv, kr = len(protos_v), len(protos_r)
        if matches is None:
            model.set_matches(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                              torch.zeros(0, 0), torch.zeros(0, 0), 0.0, 0.0)
        else:
            t_v, t_r = transfer_maps(matches, kv, kr, cfg.CPAL.TRANSFER)
            model.set_matches(matches.a_to_b, matches.b_to_a, t_v, t_r,
                              cfg.CROSS.WEIGHT if cfg.CROSS.ENABLED else 0.0,
                              cfg.CPAL.WEIGHT if cfg.CPAL.ENABLED else 0.0)
        self.sampler.set_labels(labels_v, labels_r)
        self.state = {
            "epoch": torch.tensor(epoch),
            "labels_visible": torch.as_tensor(labels_v),
            "labels_infrared": torch.as_tensor(labels_r),
            "memory_visible": model.memory_visible.features.cpu(),
            "memory_infrared": model.memory_infrared.features.cpu(),
        }
        if matches is not None:
            self.state.update(visible_to_infrared=matches.a_to_b.cpu(), infrared_to_visible=matches.b_to_a.cpu())

    def _log(self, features: torch.Tensor, labels_v: np.ndarray, labels_r: np.ndarray, matches, epoch: int) -> None:
        metrics = {
            "clusters_visible": int(labels_v.max() + 1), "clusters_infrared": int(labels_r.max() + 1),
            "outliers_visible": int((labels_v < 0).sum()), "outliers_infrared": int((labels_r < 0).sum()),
        }
        if matches is not None:
            metrics["matched_infrared"] = matches.num_matched_b
            metrics["match_confidence"] = float(matches.b_confidence[matches.b_to_a >= 0].mean()) \
                if matches.num_matched_b else 0.0
        if self.cfg.MIOT.DIAGNOSTICS and self.train_set.has_diagnostic_ids:
            ids_v, ids_r = self.train_set.diagnostic_ids(0), self.train_set.diagnostic_ids(1)
            metrics["purity_visible"] = cluster_purity(labels_v, ids_v)
            metrics["purity_infrared"] = cluster_purity(labels_r, ids_r)
            metrics["identity_alignment"] = identity_alignment(features[: self.num_visible].numpy(), ids_v,
                                                               features[self.num_visible:].numpy(), ids_r)
            if matches is not None:
                metrics["matching_accuracy"] = matching_accuracy(labels_v, ids_v, labels_r, ids_r, matches.b_to_a.numpy())
        logger.info("epoch %d pseudo labels: %s", epoch, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        self._pending_metrics = metrics

    def after_step(self):
        model = unwrap(self.trainer.model)
        model.memory_visible.apply_updates()
        model.memory_infrared.apply_updates()

    def before_step(self):
        # logged at the epoch's first iteration, so that each epoch's pseudo-label metrics carry
        # that epoch's iteration (at before_epoch, storage.iter is still the previous epoch's last)
        if getattr(self, "_pending_metrics", None):
            for key, value in self._pending_metrics.items():
                self.trainer.storage.put_scalar(key, value, smoothing_hint=False)
            self._pending_metrics = None

    # ------------------------------------------------------------------- checkpointing
    def state_dict(self) -> Dict[str, torch.Tensor]:
        return dict(self.state)

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        """Restore labels, memories and matches of the last clustered epoch."""
        self.state = dict(state)
        if not state:
            return
        model = unwrap(self.trainer.model) if hasattr(self, "trainer") else None
        labels_v, labels_r = state["labels_visible"].numpy(), state["labels_infrared"].numpy()
        self.sampler.set_labels(labels_v, labels_r)
        if model is not None:
            model.set_pseudo_labels(torch.cat([state["labels_visible"], state["labels_infrared"]]))
            model.memory_visible.reset(state["memory_visible"])
            model.memory_infrared.reset(state["memory_infrared"])
