"""Quality of MIOT's cross-modality matches, measured against true identities where a data set
has them (SynVI does). For logging only: nothing here feeds training."""
from typing import Dict

import numpy as np

from fastreid_ext.cluster.diagnostics import correct_matches, matching_accuracy


def match_metrics(targets, train_set, diagnostics: bool = True) -> Dict[str, float]:
    """Per-epoch metrics of the matches of a :class:`~miot.pseudo_labels.PseudoLabels` (none in an
    intra-only epoch): matched infrared clusters and the fractions of infrared and of visible
    clusters matched (what the selection kept), mean confidence, the matcher's iterations and
    marginal error (iterative matchers); with ``diagnostics`` and a training set that knows its
    true identities, the matching accuracy
    (unmatched clusters count as wrong) and, where the selection dropped candidates, the
    accuracy of the kept and of the dropped matches."""
    matches = targets.matches
    if matches is None:
        return {}
    matched = matches.b_to_a >= 0
    metrics = {"matched_infrared": matches.num_matched_b,
               "matched_fraction_infrared": matches.num_matched_b / max(1, len(matches.b_to_a)),
               "matched_fraction_visible": matches.num_matched_a / max(1, len(matches.a_to_b)),
               "match_confidence": float(matches.b_confidence[matched].mean()) if bool(matched.any()) else 0.0}
    if matches.iterations is not None:
        metrics["matcher_iterations"] = matches.iterations
        metrics["matcher_marginal_error"] = matches.marginal_error
    if diagnostics and train_set.has_diagnostic_ids:
        truth = (targets.labels_visible, train_set.diagnostic_ids(0), targets.labels_infrared,
                 train_set.diagnostic_ids(1))
        if matches.b_candidates is None:  # a matcher that reports no candidates: nothing was dropped
            metrics["matching_accuracy"] = matching_accuracy(*truth, matches.b_to_a.numpy())
            return metrics
        kept = matches.b_to_a.numpy() >= 0  # a kept match is its candidate
        dropped = ~kept & (matches.b_candidates.numpy() >= 0)
        candidates_correct = correct_matches(*truth, matches.b_candidates.numpy())
        metrics["matching_accuracy"] = float(np.mean(candidates_correct & kept)) if len(kept) else 0.0
        for name, subset in (("kept", kept), ("dropped", dropped)):
            if subset.any():
                metrics[f"matching_accuracy_{name}"] = float(np.mean(candidates_correct[subset]))
    return metrics
