"""Pseudo labels at scale: exact kNN, sparse k-reciprocal Jaccard distance, DBSCAN, prototypes."""
from .dbscan import dbscan_labels
from .jaccard import jaccard_distance
from .knn import exact_knn
from .prototypes import prototypes_of

__all__ = ["dbscan_labels", "exact_knn", "jaccard_distance", "prototypes_of"]
