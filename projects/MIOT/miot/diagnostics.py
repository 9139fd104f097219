"""Quality of pseudo labels and matches, measured against true identities where a data set
has them (SynVI does). For logging only: nothing here feeds training."""
from typing import Dict

import numpy as np
import torch


def _majority_ids(labels: np.ndarray, true_ids: np.ndarray) -> dict:
    majority = {}
    for label in np.unique(labels[labels >= 0]):
        ids, counts = np.unique(true_ids[labels == label], return_counts=True)
        majority[int(label)] = (int(ids[np.argmax(counts)]), int(counts.max()))
    return majority


def cluster_purity(labels: np.ndarray, true_ids: np.ndarray) -> float:
    """Fraction of clustered samples whose identity is their cluster's majority identity."""
    clustered = labels >= 0
    if not clustered.any():
        return 0.0
    majority = _majority_ids(labels, true_ids)
    return sum(count for _, count in majority.values()) / int(clustered.sum())


def matching_accuracy(labels_visible: np.ndarray, ids_visible: np.ndarray, labels_infrared: np.ndarray,
                      ids_infrared: np.ndarray, infrared_to_visible: np.ndarray) -> float:
    """Fraction of infrared clusters matched to a visible cluster of the same (majority) identity;
    unmatched infrared clusters count as wrong."""
    major_v, major_r = _majority_ids(labels_visible, ids_visible), _majority_ids(labels_infrared, ids_infrared)
    if not major_r:
        return 0.0
    correct = sum(1 for r, (rid, _) in major_r.items()
                  if infrared_to_visible[r] >= 0 and major_v.get(int(infrared_to_visible[r]), (None,))[0] == rid)
    return correct / len(major_r)


def identity_alignment(features_visible: np.ndarray, ids_visible: np.ndarray, features_infrared: np.ndarray,
                       ids_infrared: np.ndarray) -> float:
    """Fraction of the identities seen in both modalities whose mean infrared feature is closest
    (cosine) to the mean visible feature of the same identity, among those of all such identities:
    how well the embedding itself aligns the modalities, whatever the clustering and matching."""
    common = np.intersect1d(ids_visible, ids_infrared)
    if len(common) == 0:
        return 0.0

    def means(features: np.ndarray, ids: np.ndarray) -> np.ndarray:
        m = np.stack([features[ids == i].mean(axis=0) for i in common])
        return m / np.linalg.norm(m, axis=1, keepdims=True).clip(min=1e-12)

    nearest = (means(features_infrared, ids_infrared) @ means(features_visible, ids_visible).T).argmax(axis=1)
    return float((nearest == np.arange(len(common))).mean())


def pseudo_label_metrics(pseudo, features: torch.Tensor, train_set, diagnostics: bool = True) -> Dict[str, float]:
    """Per-epoch metrics of a :class:`~miot.pseudo_labels.PseudoLabels`: clusters, outliers,
    matches, the matcher's iterations and marginal error (iterative matchers), the seconds of
    each phase (``time_extract``, ``time_knn``, ``time_jaccard``, ``time_dbscan``,
    ``time_match``); with ``diagnostics`` and a training set that knows its true identities, also the
    purity of each modality's clusters, the identity alignment of the (N, D) ``features``
    (visible first) and the matching accuracy."""
    labels_v, labels_r, matches = pseudo.labels_visible, pseudo.labels_infrared, pseudo.matches
    metrics = {
        "clusters_visible": int(labels_v.max() + 1), "clusters_infrared": int(labels_r.max() + 1),
        "outliers_visible": int((labels_v < 0).sum()), "outliers_infrared": int((labels_r < 0).sum()),
    }
    if matches is not None:
        matched = matches.b_to_a >= 0
        metrics["matched_infrared"] = matches.num_matched_b
        metrics["match_confidence"] = float(matches.b_confidence[matched].mean()) if bool(matched.any()) else 0.0
        if matches.iterations is not None:
            metrics["matcher_iterations"] = matches.iterations
            metrics["matcher_marginal_error"] = matches.marginal_error
    metrics.update({f"time_{phase}": seconds for phase, seconds in pseudo.timings.items()})
    if diagnostics and train_set.has_diagnostic_ids:
        num_visible = train_set.num_visible
        ids_v, ids_r = train_set.diagnostic_ids(0), train_set.diagnostic_ids(1)
        metrics["purity_visible"] = cluster_purity(labels_v, ids_v)
        metrics["purity_infrared"] = cluster_purity(labels_r, ids_r)
        metrics["identity_alignment"] = identity_alignment(features[:num_visible].numpy(), ids_v,
                                                           features[num_visible:].numpy(), ids_r)
        if matches is not None:
            metrics["matching_accuracy"] = matching_accuracy(labels_v, ids_v, labels_r, ids_r,
                                                             matches.b_to_a.numpy())
    return metrics
