"""Exact kNN: same neighbours, in the documented order, from every backend."""
import numpy as np
import pytest

from fastreid_ext.cluster.knn import exact_knn
from fastreid_ext.testing import dense_knn

from .test_jaccard import with_duplicates


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_neighbours_equal_a_brute_force_ranking_with_index_tie_break(backend):
    for features in (np.random.default_rng(0).normal(size=(300, 24)), with_duplicates(1)):
        x = (features / np.linalg.norm(features, axis=1, keepdims=True)).astype(np.float32)
        idx, sims = exact_knn(x, 15, backend)
        x64 = x.astype(np.float64)
        np.testing.assert_array_equal(idx, dense_knn(x64, 15))
        np.testing.assert_allclose(sims, np.take_along_axis(x64 @ x64.T, idx, 1), atol=1e-6)


def test_groups_of_duplicates_larger_than_the_search_are_ranked_exactly():
    x = np.repeat(np.eye(4), 30, axis=0)  # 4 groups of 30 identical points
    idx, _ = exact_knn(x, 10, "faiss")
    np.testing.assert_array_equal(idx[45], np.arange(30, 40))  # the group's 10 smallest indices


def test_cuts_guarantee_exact_neighbourhood_sets():
    x = np.repeat(np.eye(6), 5, axis=0).astype(np.float32)  # groups of 5 ties
    idx, _ = exact_knn(x, 12, "faiss", cuts=(3, 7))
    reference = dense_knn(x.astype(np.float64), 12)
    for cut in (3, 7, 12):
        assert [set(row) for row in idx[:, :cut]] == [set(row) for row in reference[:, :cut]]


def test_bad_k_is_refused():
    with pytest.raises(ValueError, match=r"k must be in \[1, N=3\]"):
        exact_knn(np.eye(3), 4)
