"""The k-reciprocal Jaccard distance of :mod:`fastreid_ext.cluster.jaccard` in torch, on the
device that holds the features (CUDA when they are there, the CPU otherwise).

Same definition, same kNN (:func:`~fastreid_ext.cluster.knn.exact_knn`) and the same float32
similarities / float64 weights as the scipy path, so the distances agree to rounding and
DBSCAN's labels are the same. Sets are held as padded index tensors, ``(N, S)`` column indices
with a validity mask, instead of scipy sparse matrices; the final pass accumulates
``min(V_il, V_jl)`` over the columns shared by each pair in dense ``(block, N)`` buffers. On
CUDA that accumulation uses atomic adds: the last bits of a distance may differ between runs.
"""
from typing import Tuple

import numpy as np
import scipy.sparse as sp
import torch

ROW_CHUNK = 1024  # rows per chunk of the (rows, k, k) and (rows, S, k) comparisons
GATHER_ELEMENTS = 1 << 24  # float32 elements of the (rows, S, D) feature gather
BLOCK_ELEMENTS = {"cpu": 1 << 21, "cuda": 1 << 26}  # (block, N) float64 elements of the final pass


def _sentinel_sort(cols: torch.Tensor, valid: torch.Tensor, n: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Each row's valid columns sorted, duplicates removed; invalid places hold ``n``."""
    cols = torch.where(valid, cols, torch.full_like(cols, n)).sort(dim=1).values
    repeated = torch.zeros_like(valid)
    repeated[:, 1:] = cols[:, 1:] == cols[:, :-1]
    cols = torch.where(repeated, torch.full_like(cols, n), cols).sort(dim=1).values
    return cols, cols < n


def _reciprocal(knn: torch.Tensor, k: int) -> torch.Tensor:
    """(N, k) mask: ``knn[i, m]`` is in R(i, k) (i is among its own k nearest neighbours)."""
    n = len(knn)
    mask = torch.empty((n, k), dtype=torch.bool, device=knn.device)
    for start in range(0, n, ROW_CHUNK):
        rows = torch.arange(start, min(n, start + ROW_CHUNK), device=knn.device)
        back = knn[knn[rows, :k]][:, :, :k]  # (rows, k, k): neighbours of each neighbour
        mask[rows] = (back == rows.view(-1, 1, 1)).any(dim=2)
    return mask


def _expanded_support(knn: torch.Tensor, k: int, k_half: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """R*(i) as padded sorted columns (N, S) and their mask: R(i, k1) plus R(c, k1/2) of every
    c in R(i, k1) with |R(c, k1/2) ∩ R(i, k1)| > 2/3 |R(c, k1/2)|."""
    n = len(knn)
    r1_mask, half_mask = _reciprocal(knn, k), _reciprocal(knn, k_half)
    r1 = torch.where(r1_mask, knn[:, :k], torch.full_like(knn[:, :k], -1))  # -1 never matches a column
    half_sizes = half_mask.sum(dim=1)
    cols, valid = [], []
    for start in range(0, n, ROW_CHUNK):
        rows = slice(start, min(n, start + ROW_CHUNK))
        cand = knn[rows, :k]  # (rows, k) candidates c
        half_of_c, half_valid = knn[cand][:, :, :k_half], half_mask[cand]  # (rows, k, k_half)
        inside = (half_of_c.unsqueeze(-1) == r1[rows].view(-1, 1, 1, k)).any(dim=-1) & half_valid
        keep = r1_mask[rows] & (inside.sum(dim=2) > (2.0 / 3.0) * half_sizes[cand])  # (rows, k)
        chunk_cols = torch.cat([knn[rows, :k], half_of_c.flatten(1)], dim=1)
        chunk_valid = torch.cat([r1_mask[rows], (half_valid & keep.unsqueeze(-1)).flatten(1)], dim=1)
        c, v = _sentinel_sort(chunk_cols, chunk_valid, n)
        cols.append(c)
        valid.append(v)
    width = max(int(v.sum(dim=1).max()) for v in valid)
    return torch.cat([c[:, :width] for c in cols]), torch.cat([v[:, :width] for v in valid])


def _support_similarities(features: torch.Tensor, cols: torch.Tensor, valid: torch.Tensor, knn: torch.Tensor,
                          knn_sims: torch.Tensor) -> torch.Tensor:
    """(N, S) float64 similarity of each support pair: the kNN search's where the pair is a
    neighbour pair, a float32 inner product otherwise (as the scipy path)."""
    n, width = cols.shape
    sims = torch.zeros(cols.shape, dtype=torch.float64, device=cols.device)
    chunk = max(1, GATHER_ELEMENTS // (width * features.shape[1]))  # bounds the (rows, S, D) gather
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        same = cols[rows].unsqueeze(-1) == knn[rows].unsqueeze(1)  # (rows, S, k)
        found = same.any(dim=-1)
        from_knn = (same.to(torch.float64) * knn_sims[rows].unsqueeze(1)).sum(dim=-1)
        own = features[rows].unsqueeze(1)  # (rows, 1, D)
        others = features[cols[rows].clamp_max(n - 1)]  # (rows, S, D)
        computed = (own * others).sum(dim=-1).to(torch.float64)
        sims[rows] = torch.where(found, from_knn, computed)
    return torch.where(valid, sims, torch.zeros_like(sims))


def _encode(sims: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Row-wise softmax of -d² = -(2 - 2 sim) over each row's support; 0 off the support."""
    logits = torch.where(valid, -(2.0 - 2.0 * sims), torch.full_like(sims, -torch.inf))
    weights = torch.softmax(logits, dim=1)
    return torch.where(valid, weights, torch.zeros_like(weights))  # rows with no support: 0, not NaN


def _query_expansion(cols: torch.Tensor, weights: torch.Tensor, valid: torch.Tensor, knn: torch.Tensor,
                     k2: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """V_i <- mean of V_j over the k2 nearest neighbours j of i, as COO (rows, cols, values)
    sorted by row, then column."""
    n = len(cols)
    out_rows, out_cols, out_vals = [], [], []
    for start in range(0, n, ROW_CHUNK):
        rows = torch.arange(start, min(n, start + ROW_CHUNK), device=cols.device)
        neighbours = knn[rows, :k2]  # (rows, k2)
        c = cols[neighbours].flatten(1)  # (rows, k2 S)
        w = (weights[neighbours] / k2).flatten(1)
        keep = valid[neighbours].flatten(1)
        keys = (rows.view(-1, 1) * n + c)[keep]
        unique, inverse = torch.unique(keys, return_inverse=True)  # sorted
        sums = torch.zeros(len(unique), dtype=torch.float64, device=cols.device).index_add_(0, inverse, w[keep])
        out_rows.append(unique // n)
        out_cols.append(unique % n)
        out_vals.append(sums)
    return torch.cat(out_rows), torch.cat(out_cols), torch.cat(out_vals)


def _min_overlap_distances(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n: int,
                           max_distance: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """d_J = 1 - Σ min / (2 - Σ min) for every pair of rows sharing a column, kept below
    ``max_distance``; ``rows`` sorted."""
    device = rows.device
    by_col = torch.argsort(cols, stable=True)
    col_rows, col_vals = rows[by_col], vals[by_col]
    col_len = torch.bincount(cols, minlength=n)
    col_start = torch.cumsum(col_len, 0) - col_len
    row_ptr = torch.searchsorted(rows, torch.arange(n + 1, device=device))
    block = max(16, BLOCK_ELEMENTS["cuda" if device.type == "cuda" else "cpu"] // n)
    out = ([], [], [])
    for start in range(0, n, block):
        stop = min(n, start + block)
        lo, hi = int(row_ptr[start]), int(row_ptr[stop])
        lengths = col_len[cols[lo:hi]]
        total = int(lengths.sum())
        if total == 0:
            continue
        first = torch.repeat_interleave(col_start[cols[lo:hi]], lengths)
        within = torch.arange(total, device=device) - torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths,
                                                                              lengths)
        partners = first + within
        mins = torch.minimum(torch.repeat_interleave(vals[lo:hi], lengths), col_vals[partners])
        keys = torch.repeat_interleave(rows[lo:hi] - start, lengths) * n + col_rows[partners]
        overlap = torch.zeros((stop - start) * n, dtype=torch.float64, device=device).index_add_(0, keys, mins)
        hit = torch.nonzero(overlap > 0).squeeze(1)
        dist = (1.0 - overlap[hit] / (2.0 - overlap[hit])).clamp_min(0.0)  # rounding may dip below 0
        keep = dist < max_distance
        out[0].append(hit[keep] // n + start)
        out[1].append(hit[keep] % n)
        out[2].append(dist[keep])
    if not out[0]:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty, torch.zeros(0, dtype=torch.float64, device=device)
    return tuple(torch.cat(part) for part in out)


def jaccard_distance_torch(features: torch.Tensor, knn_idx: np.ndarray, knn_sims: np.ndarray, k: int, k_half: int,
                           k_qe: int, query_expansion: bool, max_distance: float) -> sp.csr_matrix:
    """The scipy path's steps 1-5 (:mod:`fastreid_ext.cluster.jaccard`) on ``features.device``.

    Args:
        features: (N, D) L2-normalised float32 features on the device to compute on.
        knn_idx, knn_sims: (N, k) neighbours and float64 similarities from ``exact_knn``.
        k, k_half, k_qe: neighbourhood sizes already capped at N.
        query_expansion: average each encoding over its ``k_qe`` nearest neighbours (k2 > 1).
    """
    device, n = features.device, len(features)
    knn = torch.as_tensor(knn_idx, dtype=torch.long, device=device)
    sims_knn = torch.as_tensor(knn_sims, dtype=torch.float64, device=device)
    cols, valid = _expanded_support(knn, k, k_half)
    weights = _encode(_support_similarities(features, cols, valid, knn[:, :k], sims_knn[:, :k]), valid)
    if query_expansion:
        rows, cols, vals = _query_expansion(cols, weights, valid, knn, k_qe)
    else:
        rows = torch.arange(n, device=device).view(-1, 1).expand_as(cols)[valid]
        cols, vals = cols[valid], weights[valid]
    rows, cols, vals = _min_overlap_distances(rows, cols, vals, n, max_distance)
    return sp.csr_matrix((vals.cpu().numpy(), (rows.cpu().numpy(), cols.cpu().numpy())), shape=(n, n))
