"""Sparse, exact k-reciprocal Jaccard distance (Zhong et al., "Re-ranking person
re-identification with k-reciprocal encoding", CVPR 2017), as used for pseudo labels by
ClusterContrast and its descendants, in memory that grows with N·k instead of N².

For L2-normalised features x_1..x_N, with kNN(i, k) the k nearest neighbours of i (itself
included; order of :func:`fastreid_ext.cluster.knn.exact_knn`):

1. k-reciprocal set R(i, k) = {j in kNN(i, k) : i in kNN(j, k)}.
2. Expansion (the 2/3 rule): R*(i) = R(i, k1) ∪ R(c, round(k1/2)) for every c in R(i, k1)
   with |R(c, k1/2) ∩ R(i, k1)| > 2/3 |R(c, k1/2)|.
3. Gaussian-weighted encoding: V_ij = exp(-d²_ij) / Σ_{l in R*(i)} exp(-d²_il) for j in R*(i),
   d²_ij = 2 - 2 x_i·x_j; 0 elsewhere.
4. Local query expansion: V_i <- mean of V_j over the k2 nearest neighbours j of i.
5. Jaccard distance d_J(i, j) = 1 - Σ_l min(V_il, V_jl) / Σ_l max(V_il, V_jl); as every row
   sums to one, Σ max = 2 - Σ min. Negative values (rounding) are clipped to 0, before
   the comparison with ``max_distance``.

Only pairs with ``d_J < max_distance`` are stored; pairs sharing no encoding column have
d_J = 1. Features are L2-normalised in float64 and stored in float32; similarities are
float32 inner products (the kNN order is resolved exactly, see ``exact_knn``); weights and
sums are float64. A point whose encoding is empty (it is
not among its own k nearest neighbours, e.g. inside a group of more than k duplicates) is at
distance 1 from everything, itself included, so its row stores nothing.
"""
import logging
import time
from typing import Dict, Optional

import numpy as np
import scipy.sparse as sp
import torch
from tqdm import tqdm

from .jaccard_torch import jaccard_distance_torch
from .knn import exact_knn, pair_similarity

PROGRESS_FROM = 20000  # points from which the progress bar is on by default (on a terminal)

logger = logging.getLogger(__name__)


def _reciprocal(knn_idx: np.ndarray, k: int) -> sp.csr_matrix:
    """R(i, k) as a boolean (N, N) matrix: j in kNN(i, k) and i in kNN(j, k)."""
    n = len(knn_idx)
    forward = sp.csr_matrix((np.ones(n * k, dtype=bool), knn_idx[:, :k].ravel(), np.arange(0, n * k + 1, k)),
                            shape=(n, n))
    return forward.multiply(forward.T).tocsr().astype(bool)


def _expansion(r1: sp.csr_matrix, r_half: sp.csr_matrix) -> sp.csr_matrix:
    """R*(i): R(i, k1) plus R(c, k1/2) of each candidate c in R(i, k1) passing the 2/3 rule."""
    r1_f, half_f = r1.astype(np.float64), r_half.astype(np.float64)
    overlap = (r1_f @ half_f.T).multiply(r1_f).tocsr()  # [i, c] = |R(c, k1/2) ∩ R(i, k1)|, c in R(i, k1)
    half_sizes = np.diff(r_half.indptr)
    rows = np.repeat(np.arange(overlap.shape[0]), np.diff(overlap.indptr))
    keep = overlap.data > (2.0 / 3.0) * half_sizes[overlap.indices]
    selected = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], overlap.indices[keep])), shape=overlap.shape)
    expanded = (r1_f + selected @ half_f).tocsr()
    expanded.data[:] = 1.0
    return expanded


def _row_reduce(ufunc, values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """``ufunc`` reduced over each CSR row; empty rows (no reciprocal neighbour, possible among
    large groups of duplicates) give 0."""
    counts = np.diff(indptr)
    out = np.zeros(len(counts))
    nonempty = counts > 0
    if nonempty.any():
        out[nonempty] = ufunc.reduceat(values, indptr[:-1][nonempty])
    return out


def _support_similarities(features: np.ndarray, support: sp.csr_matrix, knn_idx: np.ndarray,
                          knn_sims: np.ndarray) -> np.ndarray:
    """Similarity of every stored pair of ``support``: taken from the kNN search where the
    pair is a neighbour pair (most are), computed for the rest."""
    n, k = knn_idx.shape
    # shifted by 2 (similarities are >= -1) so that no stored value is 0 and lost
    known = sp.csr_matrix((knn_sims.ravel() + 2.0, knn_idx.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
    known.sum_duplicates()
    found = support.multiply(known).tocsr()  # pattern of support ∩ kNN, values sim + 2
    found.sort_indices()
    sims = np.full(support.nnz, np.nan)
    rows = np.repeat(np.arange(n), np.diff(support.indptr))
    found_rows = np.repeat(np.arange(n), np.diff(found.indptr))
    # support is sorted, so (row, col) keys are increasing and searchsorted locates them
    keys = rows * n + support.indices
    sims[np.searchsorted(keys, found_rows * n + found.indices)] = found.data - 2.0
    missing = np.flatnonzero(np.isnan(sims))
    sims[missing] = pair_similarity(features, rows[missing], support.indices[missing])
    return sims


def _encode(features: np.ndarray, support: sp.csr_matrix, knn_idx: np.ndarray, knn_sims: np.ndarray) -> sp.csr_matrix:
    """Row-wise softmax of -d² over each row's support."""
    support = support.tocsr()
    support.sort_indices()
    counts = np.diff(support.indptr)
    logits = -(2.0 - 2.0 * _support_similarities(features, support, knn_idx, knn_sims))
    weights = np.exp(logits - np.repeat(_row_reduce(np.maximum, logits, support.indptr), counts))
    weights /= np.repeat(_row_reduce(np.add, weights, support.indptr), counts)
    return sp.csr_matrix((weights, support.indices.copy(), support.indptr.copy()), shape=support.shape)


def _query_expansion(encoding: sp.csr_matrix, knn_idx: np.ndarray, k2: int) -> sp.csr_matrix:
    n = encoding.shape[0]
    averaging = sp.csr_matrix((np.full(n * k2, 1.0 / k2), knn_idx[:, :k2].ravel(), np.arange(0, n * k2 + 1, k2)),
                              shape=(n, n))
    return (averaging @ encoding).tocsr()


def _min_overlap_distances(encoding: sp.csr_matrix, max_distance: float, block: int,
                           progress: bool) -> sp.csr_matrix:
    """d_J for every pair sharing a column, keeping those below ``max_distance``."""
    n = encoding.shape[0]
    by_col = encoding.tocsc()
    col_start, col_len = by_col.indptr[:-1], np.diff(by_col.indptr)
    out_rows, out_cols, out_vals = [], [], []
    starts = range(0, n, block)
    # no tqdm object without a bar: even a disabled one takes tqdm's global lock, a semaphore shared with
    # forked processes (one killed while holding it blocks the others), and starts a monitor thread
    for start in tqdm(starts, desc="jaccard", unit="block") if progress else starts:
        sub = encoding[start:start + block]
        local_rows = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
        lengths = col_len[sub.indices]
        total = int(lengths.sum())
        # for every stored (row, col, value): every other row of that column
        offsets = np.repeat(col_start[sub.indices] - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        partners = by_col.indices[offsets]
        mins = np.minimum(np.repeat(sub.data, lengths), by_col.data[offsets])
        keys = np.repeat(local_rows, lengths) * n + partners
        overlap = np.bincount(keys, weights=mins, minlength=sub.shape[0] * n)
        hit = np.flatnonzero(overlap > 0)
        dist = np.maximum(1.0 - overlap[hit] / (2.0 - overlap[hit]), 0.0)  # rounding may dip below 0
        keep = dist < max_distance
        out_rows.append(hit[keep] // n + start)
        out_cols.append(hit[keep] % n)
        out_vals.append(dist[keep])
    rows, cols, vals = (np.concatenate(a) for a in (out_rows, out_cols, out_vals))
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def _normalised_float32(features: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Rows L2-normalised in float64, stored in float32 (without an (N, D) float64 copy)."""
    out = np.empty(features.shape, dtype=np.float32)
    for start in range(0, len(features), chunk):
        block = features[start:start + chunk].astype(np.float64)
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        out[start:start + chunk] = block
    return out


JACCARD_BACKENDS = ("auto", "scipy", "torch")


def resolve_jaccard_backend(backend: str, features) -> str:
    """``auto``: ``torch`` for features held on a CUDA device, ``scipy`` otherwise."""
    if backend not in JACCARD_BACKENDS:
        raise ValueError(f"jaccard backend must be one of {JACCARD_BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    return "torch" if isinstance(features, torch.Tensor) and features.is_cuda else "scipy"


def jaccard_distance(features, k1: int = 30, k2: int = 6, max_distance: float = 1.0,
                     knn_backend: str = "auto", progress: Optional[bool] = None,
                     block: Optional[int] = None, timings: Optional[Dict[str, float]] = None,
                     backend: str = "auto") -> sp.csr_matrix:
    """k-reciprocal Jaccard distances of the rows of ``features`` as a sparse matrix.

    Args:
        features: (N, D) array or tensor, any float dtype; rows are L2-normalised here.
        k1: neighbourhood size of the k-reciprocal sets (expansion uses round(k1/2)).
        k2: neighbours averaged in local query expansion (1 disables it).
        max_distance: only pairs with distance strictly below it are stored; absent pairs
            are at least that far. DBSCAN needs only its ``eps``.
        knn_backend: see :func:`fastreid_ext.cluster.knn.resolve_backend`.
        progress: tqdm progress bar; default on for N >= ``PROGRESS_FROM`` (20000) on a terminal.
        block: rows per block of the final pass (its buffer holds block·N float64).
        timings: if given, the seconds of the kNN search and of the rest are added to its
            ``"knn"`` and ``"jaccard"`` entries.
        backend: ``scipy`` (sparse matrices on the CPU), ``torch`` (the same steps as torch
            operations on the device holding ``features``: CUDA for a CUDA tensor, see
            :mod:`fastreid_ext.cluster.jaccard_torch`) or ``auto`` (torch for CUDA tensors,
            scipy otherwise). Both give the same distances up to rounding.
    Returns:
        (N, N) ``scipy.sparse.csr_matrix`` of float64 distances with explicit zeros kept
        (a stored 0 is a distance of 0, e.g. between duplicates; the diagonal is stored).
    """
    backend = resolve_jaccard_backend(backend, features)
    device = features.device if isinstance(features, torch.Tensor) else torch.device("cpu")
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    features = np.asarray(features)
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(f"features must be a non-empty (N, D) array, got shape {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or inf")
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
    n = len(features)
    features = _normalised_float32(features)
    if progress is None:
        import sys

        progress = n >= PROGRESS_FROM and sys.stderr.isatty()
    block = block or max(16, (1 << 21) // n)

    k = min(k1, n)
    k_half, k_qe = min(int(np.around(k1 / 2)) + 1, k), min(k2, k)
    start = time.perf_counter()
    knn_idx, knn_sims = exact_knn(features, k, knn_backend, cuts=(k, k_half, k_qe))
    searched = time.perf_counter()
    if backend == "torch":
        distances = jaccard_distance_torch(torch.from_numpy(features).to(device), knn_idx, knn_sims, k, k_half,
                                           k_qe, k2 > 1, max_distance)
    else:
        r1 = _reciprocal(knn_idx, k)
        r_half = _reciprocal(knn_idx, k_half)
        encoding = _encode(features, _expansion(r1, r_half), knn_idx, knn_sims)
        if k2 > 1:
            encoding = _query_expansion(encoding, knn_idx, k_qe)
        distances = _min_overlap_distances(encoding, max_distance, block, progress)
    if timings is not None:
        timings["knn"] = timings.get("knn", 0.0) + searched - start
        timings["jaccard"] = timings.get("jaccard", 0.0) + time.perf_counter() - searched
    return distances
