"""Pseudo labels: DBSCAN on the sparse k-reciprocal Jaccard graph."""
import logging
import time
from typing import Dict, Optional

import numpy as np
from sklearn.cluster import DBSCAN

from .jaccard import jaccard_distance

logger = logging.getLogger(__name__)


def dbscan_labels(features, eps: float = 0.6, min_samples: int = 4, k1: int = 30, k2: int = 6,
                  knn_backend: str = "auto", progress: Optional[bool] = None,
                  timings: Optional[Dict[str, float]] = None, jaccard_backend: str = "auto") -> np.ndarray:
    """Cluster labels of the rows of ``features`` (-1 = outlier).

    DBSCAN (``sklearn.cluster.DBSCAN``, metric "precomputed") on the Jaccard graph of
    :func:`jaccard_distance` holding only the pairs at distance <= ``eps``, the only ones
    DBSCAN links: the labels are those of DBSCAN on the dense matrix.

    Args:
        features: (N, D) features, any float dtype.
        eps: DBSCAN radius on the Jaccard distance, in (0, 1).
        min_samples: neighbours (itself included) that make a core point.
        k1, k2: see :func:`jaccard_distance`.
        timings: if given, seconds are added to its ``"knn"``, ``"jaccard"`` and ``"dbscan"`` entries.
        jaccard_backend: ``scipy``, ``torch`` (on the features' device) or ``auto``: see
            :func:`jaccard_distance`'s ``backend``.
    Returns:
        (N,) int64 labels 0..C-1, -1 for outliers. All -1 when nothing clusters (a warning
        is logged; the caller decides what to do).
    """
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1) for Jaccard distances, got {eps}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples}")
    # keep pairs at exactly eps too: DBSCAN's neighbourhood is dist <= eps
    graph = jaccard_distance(features, k1=k1, k2=k2, max_distance=np.nextafter(eps, 2.0),
                             knn_backend=knn_backend, progress=progress, timings=timings,
                             backend=jaccard_backend)
    start = time.perf_counter()
    # sklearn treats every point as its own neighbour; a point with an empty row is at distance
    # 1 even from itself, so it must count for nothing (weight 0): it is always an outlier
    weights = (np.diff(graph.indptr) > 0).astype(np.float64)
    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(graph, sample_weight=weights)
    if timings is not None:
        timings["dbscan"] = timings.get("dbscan", 0.0) + time.perf_counter() - start
    if np.all(labels == -1):
        logger.warning("DBSCAN (eps=%s, min_samples=%d) found no cluster: all %d points are outliers",
                       eps, min_samples, len(labels))
    return labels.astype(np.int64)
