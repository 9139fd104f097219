"""Quality of pseudo labels and cross-modality cluster matches, measured against true identities
where a data set has them (SynVI does). For logging only: nothing here feeds training."""
import numpy as np


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


def correct_matches(labels_visible: np.ndarray, ids_visible: np.ndarray, labels_infrared: np.ndarray,
                    ids_infrared: np.ndarray, infrared_to_visible: np.ndarray) -> np.ndarray:
    """(Kr,) bool: infrared cluster r is matched to a visible cluster of its (majority) identity;
    unmatched clusters (-1) are not."""
    major_v, major_r = _majority_ids(labels_visible, ids_visible), _majority_ids(labels_infrared, ids_infrared)
    correct = np.zeros(len(infrared_to_visible), dtype=bool)
    for r, (rid, _) in major_r.items():
        partner = int(infrared_to_visible[r])
        correct[r] = partner >= 0 and major_v.get(partner, (None,))[0] == rid
    return correct


def matching_accuracy(labels_visible: np.ndarray, ids_visible: np.ndarray, labels_infrared: np.ndarray,
                      ids_infrared: np.ndarray, infrared_to_visible: np.ndarray) -> float:
    """Fraction of infrared clusters matched to a visible cluster of the same (majority) identity;
    unmatched infrared clusters count as wrong."""
    if len(infrared_to_visible) == 0 or labels_infrared.max() < 0:
        return 0.0
    return float(correct_matches(labels_visible, ids_visible, labels_infrared, ids_infrared,
                                 infrared_to_visible).mean())


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
