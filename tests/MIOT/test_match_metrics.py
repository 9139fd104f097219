"""MIOT's per-epoch match metrics: the selection's kept fraction and the accuracy of what it kept
and dropped, against hand-computed values."""
import types

import numpy as np
import pytest
import torch

from fastreid_ext.matching import select_matches
from miot.diagnostics import match_metrics
from miot.pseudo_labels import PseudoLabels


def test_kept_and_dropped_matches_are_scored_separately():
    # visible clusters 0, 1, 2 are identities 10, 11, 12; infrared clusters 0, 1, 2, 3 are 10, 11, 12, 13
    labels_v, ids_v = np.array([0, 0, 1, 1, 2, 2]), np.array([10, 10, 11, 11, 12, 12])
    labels_r, ids_r = np.array([0, 1, 2, 3]), np.array([10, 11, 12, 13])
    b_to_a = torch.tensor([0, 2, 2, 1])  # right, wrong, right, wrong
    b_conf = torch.tensor([0.9, 0.2, 0.3, 0.8])
    a_to_b, a_conf = torch.tensor([0, 3, 2]), torch.tensor([0.9, 0.3, 0.4])  # visible 1 and 2 below the threshold
    matches = select_matches(a_to_b, a_conf, b_to_a, b_conf, threshold=0.5)  # keeps infrared 0 and 3
    targets = PseudoLabels(1, labels_v, labels_r, torch.eye(3), torch.eye(4), matches=matches)
    train_set = types.SimpleNamespace(has_diagnostic_ids=True,
                                      diagnostic_ids=lambda modality: ids_v if modality == 0 else ids_r)
    metrics = match_metrics(targets, train_set)
    assert metrics["matched_infrared"] == 2 and metrics["matched_fraction_infrared"] == pytest.approx(0.5)
    assert metrics["matched_fraction_visible"] == pytest.approx(1 / 3)  # visible 0 kept
    assert metrics["matching_accuracy"] == pytest.approx(1 / 4)  # dropped ones count as wrong here
    assert metrics["matching_accuracy_kept"] == pytest.approx(1 / 2)  # 0 right, 3 wrong
    assert metrics["matching_accuracy_dropped"] == pytest.approx(1 / 2)  # 1 wrong, 2 right
    assert match_metrics(PseudoLabels(0, labels_v, labels_r, torch.eye(3), torch.eye(4)), train_set) == {}
