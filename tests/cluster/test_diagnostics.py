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


def brute_force_alignment(features_v, ids_v, features_r, ids_r):
    """Identity by identity, with explicit cosine similarities."""
    common = sorted(set(ids_v.tolist()) & set(ids_r.tolist()))
    mean = lambda f, ids, i: f[ids == i].mean(axis=0)  # noqa: E731
    cosine = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    hits = 0
    for i in common:
        sims = [cosine(mean(features_r, ids_r, i), mean(features_v, ids_v, j)) for j in common]
        hits += common[int(np.argmax(sims))] == i
    return hits / len(common)


def test_identity_alignment_equals_a_brute_force_count_on_unnormalised_features():
    rng = np.random.default_rng(0)
    ids_v, ids_r = np.repeat(np.arange(8), 3), np.repeat(np.arange(2, 10), 2)
    features_v = rng.normal(size=(24, 6)) * rng.uniform(0.1, 10, size=(24, 1))  # norms far from 1
    features_r = features_v[::3][np.repeat(np.arange(8), 2) % 8] + rng.normal(scale=1.5, size=(16, 6))
    got = identity_alignment(features_v, ids_v, features_r, ids_r)
    assert got == pytest.approx(brute_force_alignment(features_v, ids_v, features_r, ids_r))
    assert 0 < got < 1


def test_matching_accuracy_is_zero_without_matches_or_clusters_and_counts_a_single_cluster():
    labels_v, ids_v = np.array([0, 0, 1]), np.array([5, 5, 6])
    assert matching_accuracy(labels_v, ids_v, np.array([0, 0]), np.array([5, 5]), np.array([], dtype=int)) == 0.0
    assert matching_accuracy(labels_v, ids_v, np.array([-1, -1]), np.array([5, 5]), np.array([0])) == 0.0
    assert matching_accuracy(labels_v, ids_v, np.array([0, 0]), np.array([5, 5]), np.array([0])) == 1.0
    assert matching_accuracy(labels_v, ids_v, np.array([0, 0]), np.array([5, 5]), np.array([7])) == 0.0  # no such


def test_a_cluster_stands_for_its_most_frequent_identity_not_its_smallest():
    labels_v, ids_v = np.array([0, 0, 0]), np.array([3, 5, 5])  # majority 5, smallest 3
    labels_r, ids_r = np.array([0, 0]), np.array([5, 5])
    assert matching_accuracy(labels_v, ids_v, labels_r, ids_r, np.array([0])) == 1.0


def test_identity_alignment_does_not_depend_on_the_features_scale():
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(6), 2)
    features_v = rng.normal(size=(12, 5)) * rng.uniform(0.2, 5, size=(12, 1))
    features_r = features_v + rng.normal(scale=1.2, size=(12, 5))
    reference = brute_force_alignment(features_v, ids, features_r, ids)
    for scale in (1e-3, 1.0, 1e3):  # means far below and far above unit norm
        assert identity_alignment(features_v * scale, ids, features_r * scale, ids) == pytest.approx(reference)


def test_an_identity_whose_mean_feature_is_zero_is_nearest_to_none():
    """Identity 1's visible features cancel: its infrared mean cannot find it, and the others still find theirs."""
    e = np.eye(3)
    visible, ids_visible = np.stack([e[0], e[1], -e[1], e[2]]), np.array([0, 1, 1, 2])
    with np.errstate(all="raise"):  # no division by a zero norm
        assert identity_alignment(visible, ids_visible, e, np.array([0, 1, 2])) == pytest.approx(2 / 3)
