"""Exact k-nearest-neighbour search by inner product on L2-normalised features.

Backends: faiss (CPU, or GPU when faiss has GPU support and CUDA is present) and plain torch
(chunked matmul + topk, used on CUDA when faiss has no GPU support). Whatever the backend,
the returned neighbours follow one documented order, so results are reproducible across
backends: similarity (the float64 inner product of the float32 features) descending,
compared at ``1e-9`` resolution, ties broken by the smaller index.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

TIE_RESOLUTION = 1e-9  # float64 similarities closer than this are ties, broken by index
_PAD = 8  # extra candidates searched, so that near-ties at the k-th place are seen
_FLOAT32_SLACK = 1e-5  # bound on float32 inner-product error: closer candidates are re-ranked in float64


def _faiss_search(features: np.ndarray, k: int, use_gpu: bool) -> Tuple[np.ndarray, np.ndarray]:
    import faiss

    if not use_gpu:  # brute force without an index: no second copy of the features
        sims, idx = faiss.knn(features, features, k, metric=faiss.METRIC_INNER_PRODUCT)
        return idx, sims
    index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), torch.cuda.current_device(),
                                   faiss.IndexFlatIP(features.shape[1]))
    index.add(features)
    sims, idx = index.search(features, k)
    return idx, sims


def _torch_search(features: np.ndarray, k: int, device: str, chunk: int = 4096) -> Tuple[np.ndarray, np.ndarray]:
    x = torch.from_numpy(features).to(device)
    idx, sims = [], []
    for start in range(0, len(x), chunk):
        top = (x[start:start + chunk] @ x.t()).topk(k, dim=1)  # (chunk, N) similarities
        idx.append(top.indices.cpu())
        sims.append(top.values.cpu())
    return torch.cat(idx).numpy(), torch.cat(sims).numpy()


def resolve_backend(backend: str = "auto") -> str:
    """``auto`` -> ``faiss-gpu`` / ``torch-cuda`` / ``faiss`` depending on what is installed."""
    import faiss

    from ..utils import cuda_usable

    if backend != "auto":
        if backend not in ("faiss", "faiss-gpu", "torch", "torch-cuda"):
            raise ValueError(f"knn backend must be auto, faiss, faiss-gpu, torch or torch-cuda; got {backend!r}")
        return backend
    if cuda_usable():
        return "faiss-gpu" if hasattr(faiss, "StandardGpuResources") else "torch-cuda"
    return "faiss"


def _rank(cand: np.ndarray, sims64: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """First ``k`` of each row of ``cand`` by float64 similarity (at TIE_RESOLUTION), then index."""
    order = np.lexsort((cand, -np.round(sims64 / TIE_RESOLUTION)), axis=-1)[..., :k]
    return np.take_along_axis(cand, order, -1), np.take_along_axis(sims64, order, -1)


def pair_similarity(features: np.ndarray, rows: np.ndarray, cols: np.ndarray, dtype=np.float32,
                    chunk: int = 2048) -> np.ndarray:
    """Inner products of the pairs (rows[i], cols[i]), accumulated in ``dtype``, as float64.

    Small chunks keep the gathered rows in reused, cache-sized buffers."""
    out = np.empty(len(rows), dtype=np.float64)
    for start in range(0, len(rows), chunk):
        r, c = rows[start:start + chunk], cols[start:start + chunk]
        out[start:start + chunk] = np.einsum("ij,ij->i", features[r].astype(dtype, copy=False),
                                             features[c].astype(dtype, copy=False))
    return out


def exact_knn(features: np.ndarray, k: int, backend: str = "auto",
              cuts: Optional[Sequence[int]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of every row of ``features`` (itself included).

    Candidates come from a float32 search; rows where two candidates are closer than float32
    error across a place that matters are re-ranked with float64 inner products of the
    float32 features, so the order is exactly: similarity descending, ties (within
    ``TIE_RESOLUTION``) by the smaller index.

    Args:
        features: (N, D) L2-normalised float32 features.
        k: neighbours per row, ``k <= N``.
        backend: see :func:`resolve_backend`.
        cuts: if given, only the *sets* ``idx[:, :c]`` for ``c`` in ``cuts`` (and ``k``) are
            guaranteed exact, not the order inside them: much less re-ranking when the caller
            only uses neighbourhoods (as the Jaccard distance does).
    Returns:
        (N, k) int64 neighbour indices and (N, k) float64 similarities (float32-accurate).
    """
    n = len(features)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, N={n}], got {k}")
    features = np.ascontiguousarray(features, dtype=np.float32)
    searched = min(n, k + _PAD)
    backend = resolve_backend(backend)
    if backend.startswith("faiss"):
        cand, sims = _faiss_search(features, searched, backend == "faiss-gpu")
    else:
        cand, sims = _torch_search(features, searched, "cuda" if backend == "torch-cuda" else "cpu")
    cand = cand.astype(np.int64)
    idx, top = cand[:, :k].copy(), sims[:, :k].astype(np.float64)
    gaps = -np.diff(sims[:, :k + 1], axis=1)  # gaps[:, j]: between places j and j + 1
    places = np.arange(gaps.shape[1]) if cuts is None else np.unique([c - 1 for c in list(cuts) + [k]
                                                                      if 0 < c < searched])
    near_tie = (gaps[:, places] < _FLOAT32_SLACK).any(axis=1) if len(places) else np.zeros(n, dtype=bool)
    beyond = np.zeros(n, dtype=bool)
    if searched < n:  # ties may continue past the last candidate
        beyond = sims[:, -1] > sims[:, k - 1] - _FLOAT32_SLACK
    rescore = np.flatnonzero(near_tie & ~beyond)
    if len(rescore):
        rows = np.repeat(rescore, searched)
        sims64 = pair_similarity(features, rows, cand[rescore].ravel(), dtype=np.float64)
        idx[rescore], top[rescore] = _rank(cand[rescore], sims64.reshape(len(rescore), searched), k)
    exhaustive = np.flatnonzero(beyond)
    features64 = features.astype(np.float64) if len(exhaustive) else None
    for start in range(0, len(exhaustive), 256):
        block = exhaustive[start:start + 256]
        full = features64[block] @ features64.T  # (B, N)
        idx[block], top[block] = _rank(np.broadcast_to(np.arange(n), full.shape), full, k)
    return idx, top
