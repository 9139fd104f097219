"""One epoch's training targets of MIOT: the toolkit's per-modality clusters and prototypes
(:func:`fastreid_ext.engine.loop.cluster_each_modality`), matched across modalities.

:func:`match_clusters` is MIOT's step of the loop (a plain function: clusters in, targets out);
:class:`PseudoLabels` is its result, which the loop hook broadcasts, applies to the model and
sampler, and checkpoints.
"""
from dataclasses import dataclass, fields
from typing import Dict, Optional

import torch
from fastreid.config import CfgNode

from fastreid_ext.engine.loop import EpochTargets
from fastreid_ext.matching import CrossModalMatches, match_prototypes

from .config import matcher_kwargs

_MATCH_FIELDS = [f.name for f in fields(CrossModalMatches)]
_MATCH_SCALARS = ("iterations", "marginal_error")


@dataclass
class PseudoLabels(EpochTargets):
    """:class:`~fastreid_ext.engine.loop.EpochTargets` plus ``matches``: visible (A) <->
    infrared (B) cluster matches; None in an intra-only epoch."""

    matches: Optional[CrossModalMatches] = None

    def state_dict(self) -> Dict[str, torch.Tensor]:
        state = super().state_dict()
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
        matches = None
        if "matches.a_to_b" in state:
            values = {name: state.get(f"matches.{name}") for name in _MATCH_FIELDS}
            for name in _MATCH_SCALARS:
                values[name] = values[name].item() if values[name] is not None else None
            matches = CrossModalMatches(**values)
        return cls(**cls._common_fields(state), matches=matches)


def matching_starts_at(cfg: CfgNode) -> int:
    """First epoch with cross-modality matching: after ``MIOT.WARMUP_RATIO`` of the epochs."""
    return int(round(cfg.MIOT.WARMUP_RATIO * cfg.SOLVER.MAX_EPOCH))


def match_clusters(clusters: EpochTargets, cfg: CfgNode) -> PseudoLabels:
    """The epoch's targets: ``clusters`` with their prototypes matched by ``MIOT.MATCHER`` (after
    the warm-up, unless ``MIOT.MATCHER.NAME`` is ``none``; no matches otherwise)."""
    m = cfg.MIOT.MATCHER
    matches = None
    if m.NAME.lower() != "none" and clusters.epoch >= matching_starts_at(cfg):
        matches = match_prototypes(clusters.prototypes_visible, clusters.prototypes_infrared, method=m.NAME,
                                   **matcher_kwargs(cfg))
    return PseudoLabels(clusters.epoch, clusters.labels_visible, clusters.labels_infrared,
                        clusters.prototypes_visible, clusters.prototypes_infrared, dict(clusters.timings),
                        matches=matches)
