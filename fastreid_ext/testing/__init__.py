"""Slow, independent references and synthetic inputs for checking the toolkit's numerics, in the
spirit of ``numpy.testing``: the tests and the benchmarks use them, and so can a project's own
tests (a new clustering backend against :func:`dense_jaccard`, a new matcher on
:func:`synthetic_prototype_cost`). Nothing in the toolkit's run-time path imports them.
"""
from .dense_jaccard import dense_dbscan_labels, dense_jaccard, dense_knn
from .features import synthetic_reid_features
from .prototype_costs import synthetic_prototype_cost

__all__ = ["dense_dbscan_labels", "dense_jaccard", "dense_knn", "synthetic_prototype_cost", "synthetic_reid_features"]
