"""Quality of MIOT's cross-modality matches, measured against true identities where a data set
has them (SynVI does). For logging only: nothing here feeds training."""
from typing import Dict

from fastreid_ext.cluster.diagnostics import matching_accuracy


def match_metrics(targets, train_set, diagnostics: bool = True) -> Dict[str, float]:
    """Per-epoch metrics of the matches of a :class:`~miot.pseudo_labels.PseudoLabels` (none in an
    intra-only epoch): matched infrared clusters, mean confidence, the matcher's iterations and
    marginal error (iterative matchers); with ``diagnostics`` and a training set that knows its
    true identities, the matching accuracy."""
    matches = targets.matches
    if matches is None:
        return {}
    matched = matches.b_to_a >= 0
    metrics = {"matched_infrared": matches.num_matched_b,
               "match_confidence": float(matches.b_confidence[matched].mean()) if bool(matched.any()) else 0.0}
    if matches.iterations is not None:
        metrics["matcher_iterations"] = matches.iterations
        metrics["matcher_marginal_error"] = matches.marginal_error
    if diagnostics and train_set.has_diagnostic_ids:
        metrics["matching_accuracy"] = matching_accuracy(targets.labels_visible, train_set.diagnostic_ids(0),
                                                         targets.labels_infrared, train_set.diagnostic_ids(1),
                                                         matches.b_to_a.numpy())
    return metrics
