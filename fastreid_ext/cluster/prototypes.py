"""Cluster prototypes: the normalised mean feature of each pseudo identity."""
import numpy as np
import torch
import torch.nn.functional as F


def prototypes_of(features: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    """(K, D) L2-normalised means of the features of each cluster 0..K-1 (label -1 ignored).

    Args:
        features: (N, D) features.
        labels: (N,) cluster of each feature, -1 for outliers; K = max label + 1.
    """
    num = int(labels.max()) + 1
    labels_t = torch.as_tensor(labels, dtype=torch.long)
    keep = labels_t >= 0
    sums = features.new_zeros(num, features.shape[1]).index_add_(0, labels_t[keep], features[keep])
    return F.normalize(sums, dim=1)
