"""Pseudo-label diagnostics against hand-computed values (logged on SynVI, never used for training)."""
import numpy as np
import pytest

from fastreid_ext.cluster.diagnostics import cluster_purity, identity_alignment, matching_accuracy


def test_cluster_purity_counts_majority_identities_over_clustered_samples():
    labels = np.array([0, 0, 0, 1, 1, -1])
    ids = np.array([5, 5, 6, 7, 7, 9])
    assert cluster_purity(labels, ids) == pytest.approx(4 / 5)  # the outlier does not count
    assert cluster_purity(np.full(3, -1), np.arange(3)) == 0.0


def test_matching_accuracy_compares_majority_identities_and_counts_unmatched_as_wrong():
    labels_v, ids_v = np.array([0, 0, 1, 1]), np.array([1, 1, 2, 2])
    labels_r, ids_r = np.array([0, 0, 1, 1, 2, 2]), np.array([2, 2, 1, 1, 3, 3])
    # IR cluster 0 (id 2) -> visible 1 (id 2): right; IR 1 (id 1) -> visible 1: wrong; IR 2 unmatched
    assert matching_accuracy(labels_v, ids_v, labels_r, ids_r, np.array([1, 1, -1])) == pytest.approx(1 / 3)
    assert matching_accuracy(labels_v, ids_v, labels_r, ids_r, np.array([1, 0, -1])) == pytest.approx(2 / 3)


def test_identity_alignment_asks_whether_each_infrared_identity_is_nearest_its_own_visible_mean():
    e = np.eye(4)
    ids_v = np.array([1, 1, 2, 3, 4])  # identity 4 is visible only: not a candidate
    features_v = np.stack([e[0] + 0.1 * e[1], e[0] - 0.1 * e[1], e[1], e[2], e[3]])
    ids_r = np.array([1, 2, 2, 3])
    features_r = np.stack([e[3] + 0.5 * e[0], e[2] + 0.2 * e[1], e[2], e[2] + 0.1 * e[0]])
    # id 1 -> its own visible mean e0 (the visible-only id 4 at e3, nearer, is no candidate);
    # id 2 -> nearer to the visible mean of 3; id 3 -> 3
    assert identity_alignment(features_v, ids_v, features_r, ids_r) == pytest.approx(2 / 3)
    assert identity_alignment(features_v, ids_v, features_r, np.array([7, 8, 8, 9])) == 0.0  # no common identity
