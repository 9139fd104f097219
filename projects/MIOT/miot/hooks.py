"""MIOT's step of the toolkit's alternating loop: after each modality is clustered, match the
prototypes across modalities (OTPA); log the matches' quality with the clusters'."""
from typing import Dict

import torch

from fastreid_ext.engine.loop import EpochTargets, PseudoLabelLoop

from .diagnostics import match_metrics
from .pseudo_labels import PseudoLabels, match_clusters


class MIOTLoopHook(PseudoLabelLoop):
    """:class:`~fastreid_ext.engine.loop.PseudoLabelLoop` whose method step is
    :func:`~miot.pseudo_labels.match_clusters`; its targets are :class:`PseudoLabels`."""

    targets_class = PseudoLabels

    def method_step(self, targets: EpochTargets) -> PseudoLabels:
        return match_clusters(targets, self.cfg)

    def metrics(self, targets: PseudoLabels, features: torch.Tensor) -> Dict[str, float]:
        metrics = super().metrics(targets, features)
        metrics.update(match_metrics(targets, self.train_set, self.settings.diagnostics))
        return metrics
