"""Cluster prototypes: the normalised mean of each cluster's features, outliers left out."""
import numpy as np
import torch

from fastreid_ext.cluster.prototypes import prototypes_of


def test_prototypes_are_the_normalised_means_of_each_cluster_outliers_ignored():
    features = torch.randn(9, 5, generator=torch.Generator().manual_seed(0))
    labels = np.array([0, 2, -1, 1, 0, 2, 2, -1, 1], dtype=np.int32)  # any integer dtype
    got = prototypes_of(features, labels)
    assert got.shape == (3, 5)  # K = max label + 1, label 0 included
    for k in range(3):
        mean = features[torch.from_numpy(labels == k)].mean(0)
        torch.testing.assert_close(got[k], mean / mean.norm())
    assert torch.allclose(got.norm(dim=1), torch.ones(3))
