"""Optimal-transport matching of cross-modality prototypes (OTPA) and a Hungarian baseline."""
from .matchers import (MATCHER_REGISTRY, CrossModalMatches, match_prototypes, matcher_options, prototype_cost,
                       select_matches)
from .sinkhorn import SinkhornConvergenceWarning, sinkhorn

__all__ = ["MATCHER_REGISTRY", "CrossModalMatches", "match_prototypes", "matcher_options", "SinkhornConvergenceWarning",
           "prototype_cost", "select_matches", "sinkhorn"]
