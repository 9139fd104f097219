"""The MIOT alternating loop as a fastreid hook: before each epoch, extract the features of
every training image, compute the epoch's pseudo labels on rank 0, broadcast them, apply them
to the model, memories and sampler, and log their quality."""
import logging
import sys
import time
from typing import Dict, Optional

import torch
from fastreid.engine import HookBase
from fastreid.utils import comm

from fastreid_ext.compat import restart_data_iterator
from fastreid_ext.data import build_inference_loader
from fastreid_ext.engine import extract_features, unwrap

from .diagnostics import pseudo_label_metrics
from .losses import transfer_maps
from .pseudo_labels import PseudoLabels, pseudo_labels_for_epoch

logger = logging.getLogger(__name__)


class MIOTLoopHook(HookBase):
    """Re-clusters and re-matches before every epoch (:func:`pseudo_labels_for_epoch`); after
    every step applies the memories' queued momentum updates (on every rank alike).

    Checkpointed with the model: its state is the :class:`PseudoLabels` applied at the start
    of the last epoch (the memories start from its prototypes; their momentum-updated values
    are not kept, since the next epoch re-initialises them). Loading it applies it again, and
    a resumed run uses it as the previous labels of its first epoch's clustering fallback.
    """

    def __init__(self, cfg, train_set, sampler):
        self.cfg = cfg
        self.train_set = train_set  # visible samples first, then infrared
        self.sampler = sampler
        self.current: Optional[PseudoLabels] = None
        self._pending_metrics: Dict[str, float] = {}

    def before_epoch(self):
        """Every rank extracts its share of the features; rank 0 computes the pseudo labels once
        and broadcasts them, so that every rank holds the same labels, memories and matches."""
        start = time.perf_counter()
        features = self._extract(unwrap(self.trainer.model))
        extract_seconds = time.perf_counter() - start
        pseudo = None
        if comm.is_main_process():
            pseudo = pseudo_labels_for_epoch(features, self.train_set.num_visible, self.trainer.epoch, self.cfg,
                                             self.sampler.num_ids, previous=self.current, progress=self._progress())
            pseudo.timings["extract"] = extract_seconds
        if comm.get_world_size() > 1:
            pseudo = comm.all_gather(pseudo)[0]  # rank 0's result, on every rank
        self.apply(pseudo)
        # data-loader workers prefetched batches from the old labels: restart them (costs one
        # worker start-up per epoch; draining would load and drop as many batches; a loader
        # without workers prefetches nothing and is left alone)
        restart_data_iterator(self.trainer)
        if comm.is_main_process():
            self._pending_metrics = pseudo_label_metrics(pseudo, features, self.train_set,
                                                         diagnostics=self.cfg.MIOT.DIAGNOSTICS)
            logger.info("epoch %d pseudo labels: %s", pseudo.epoch,
                        ", ".join(f"{k}={v:.4g}" for k, v in self._pending_metrics.items()))

    def _progress(self) -> bool:
        """tqdm on rank 0: ``PROGRESS auto`` shows it on a terminal only (quiet in CI and logs)."""
        setting = self.cfg.get("PROGRESS", "auto")
        return comm.is_main_process() and (setting == "on" or (setting == "auto" and sys.stderr.isatty()))

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

    def apply(self, pseudo: PseudoLabels) -> None:
        """Make ``pseudo`` the training targets: memories start from its prototypes, the model
        maps sample indices to its labels and uses its matches, the sampler draws its clusters."""
        model, m = unwrap(self.trainer.model), self.cfg.MIOT
        model.memory_visible.reset(pseudo.prototypes_visible)
        model.memory_infrared.reset(pseudo.prototypes_infrared)
        model.set_pseudo_labels(torch.cat([torch.as_tensor(pseudo.labels_visible, dtype=torch.long),
                                           torch.as_tensor(pseudo.labels_infrared, dtype=torch.long)]))
        if pseudo.matches is None:
            model.clear_matches()
        else:
            transfer_v, transfer_r = transfer_maps(pseudo.matches, len(pseudo.prototypes_visible),
                                                   len(pseudo.prototypes_infrared), m.CPAL.TRANSFER)
            model.set_matches(pseudo.matches.a_to_b, pseudo.matches.b_to_a, transfer_v, transfer_r,
                              m.CROSS.WEIGHT if m.CROSS.ENABLED else 0.0, m.CPAL.WEIGHT if m.CPAL.ENABLED else 0.0)
        self.sampler.set_labels(pseudo.labels_visible, pseudo.labels_infrared)
        self.current = pseudo

    def before_step(self):
        # logged at the epoch's first iteration, so that each epoch's pseudo-label metrics carry
        # that epoch's iteration (at before_epoch, storage.iter is still the previous epoch's last)
        for key, value in self._pending_metrics.items():
            self.trainer.storage.put_scalar(key, value, smoothing_hint=False)
        self._pending_metrics = {}

    def after_step(self):
        model = unwrap(self.trainer.model)
        model.memory_visible.apply_updates()
        model.memory_infrared.apply_updates()

    # ------------------------------------------------------------------- checkpointing
    def state_dict(self) -> Dict[str, torch.Tensor]:
        return self.current.state_dict() if self.current is not None else {}

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        """The inverse of :meth:`state_dict`: apply the saved pseudo labels again."""
        if state:
            self.apply(PseudoLabels.from_state_dict(state))
