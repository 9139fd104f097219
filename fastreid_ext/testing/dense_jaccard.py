"""Dense reference of the k-reciprocal Jaccard distance, written from its description
(Zhong et al. 2017, as used by ClusterContrast): N x N arrays and per-row Python loops.

Used by the tests (identical labels) and by benchmarks/bench_cluster.py (speed reference).
Features are L2-normalised in float64 and rounded to float32, then used in float64.
Neighbour order: similarity descending at 1e-9 resolution, ties by smaller index.
"""
import numpy as np
from sklearn.cluster import DBSCAN


def dense_knn(x: np.ndarray, k: int) -> np.ndarray:
    sims = x @ x.T
    ranks = np.empty((len(x), k), dtype=np.int64)
    for i in range(len(x)):
        ranks[i] = np.lexsort((np.arange(len(x)), -np.round(sims[i] / 1e-9)))[:k]
    return ranks


def k_reciprocal(initial_rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = initial_rank[i, :k + 1]
    backward = initial_rank[forward, :k + 1]
    return forward[np.where(backward == i)[0]]


def dense_jaccard(features: np.ndarray, k1: int = 30, k2: int = 6, knn=dense_knn, dtype=np.float64) -> np.ndarray:
    """``knn(x, k) -> (N, k) ranks`` and the dtype of the N x N arrays can be swapped (the
    benchmark uses faiss and float32, as ClusterContrast does)."""
    x = np.asarray(features, dtype=np.float64)
    x = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32).astype(dtype)
    n = len(x)
    initial_rank = knn(x, min(k1, n))
    half = int(np.around(k1 / 2))
    nn_k1 = [k_reciprocal(initial_rank, i, k1) for i in range(n)]
    nn_half = [k_reciprocal(initial_rank, i, half) for i in range(n)]
    V = np.zeros((n, n), dtype=dtype)
    for i in range(n):
        reciprocal = nn_k1[i]
        expansion = reciprocal
        for candidate in reciprocal:
            cand = nn_half[candidate]
            if len(np.intersect1d(cand, reciprocal)) > 2 / 3 * len(cand):
                expansion = np.append(expansion, cand)
        expansion = np.unique(expansion)
        if len(expansion) == 0:  # not among its own k1 neighbours (inside > k1 duplicates)
            continue
        dist = 2 - 2 * (x[expansion] @ x[i])
        weights = np.exp(-dist - np.max(-dist))
        V[i, expansion] = weights / weights.sum()
    if k2 != 1:
        V = np.stack([V[initial_rank[i, :k2]].mean(axis=0) for i in range(n)])
    inv_index = [np.where(V[:, i] != 0)[0] for i in range(n)]
    jaccard = np.zeros((n, n), dtype=dtype)
    for i in range(n):
        temp_min = np.zeros(n, dtype=dtype)
        nonzero = np.where(V[i] != 0)[0]
        for j in nonzero:
            temp_min[inv_index[j]] += np.minimum(V[i, j], V[inv_index[j], j])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    jaccard[jaccard < 0] = 0
    return jaccard


def dense_dbscan_labels(features, eps=0.6, min_samples=4, k1=30, k2=6, **kwargs) -> np.ndarray:
    distances = dense_jaccard(features, k1, k2, **kwargs)
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(distances)
