"""MIOT losses against hand computations on tiny tensors."""
import math

import pytest
import torch

from fastreid_ext.matching import CrossModalMatches
from miot.losses import (cross_prediction_alignment, prototype_contrast, transfer_maps, transfer_matrix_from_matches,
                         transfer_matrix_from_plan)


def test_prototype_contrast_is_the_cross_entropy_over_prototypes():
    logits = torch.tensor([[0.5, 0.1, -0.2], [0.0, 0.3, 0.3]])
    targets = torch.tensor([0, 2])
    tau = 0.5
    by_hand = []
    for row, y in zip(logits.tolist(), targets.tolist()):
        exps = [math.exp(v / tau) for v in row]
        by_hand.append(-math.log(exps[y] / sum(exps)))
    assert prototype_contrast(logits, targets, tau).item() == pytest.approx(sum(by_hand) / 2, rel=1e-6)


def test_prototype_contrast_ignores_outliers_and_is_zero_without_labels():
    logits = torch.tensor([[0.5, 0.1], [9.0, -9.0]], requires_grad=True)
    only_first = prototype_contrast(logits, torch.tensor([1, -1]), 0.1)
    assert only_first.item() == pytest.approx(prototype_contrast(logits[:1], torch.tensor([1]), 0.1).item())
    none = prototype_contrast(logits, torch.tensor([-1, -1]), 0.1)
    assert none.item() == 0.0 and none.requires_grad


def test_transfer_matrices():
    plan = torch.tensor([[0.2, 0.1, 0.0], [0.0, 0.1, 0.6]])
    torch.testing.assert_close(transfer_matrix_from_plan(plan),
                               torch.tensor([[2 / 3, 1 / 3, 0.0], [0.0, 1 / 7, 6 / 7]]))
    hard = transfer_matrix_from_matches(torch.tensor([2, -1, 0]), num_other=3)
    torch.testing.assert_close(hard, torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))


def softmax(row, tau):
    exps = [math.exp(v / tau) for v in row]
    return [e / sum(exps) for e in exps]


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def test_cpal_is_the_symmetric_kl_between_mapped_and_other_predictions():
    own = torch.tensor([[0.2, -0.1]])
    other = torch.tensor([[0.0, 0.4, 0.1]])
    transfer = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]])
    tau = 0.5
    p_own, p_other = softmax(own[0].tolist(), tau), softmax(other[0].tolist(), tau)
    p_map = [sum(p_own[i] * transfer[i, j].item() for i in range(2)) for j in range(3)]
    expected = 0.5 * (kl(p_map, p_other) + kl(p_other, p_map))
    loss = cross_prediction_alignment(own, other, transfer, torch.tensor([1]), tau)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert cross_prediction_alignment(own, other, transfer, torch.tensor([-1]), tau).item() == 0.0
    # a float64 plan (as the solver gives it) is used in the logits' precision
    as_float64 = cross_prediction_alignment(own, other, transfer.double(), torch.tensor([1]), tau)
    assert as_float64.dtype == torch.float32 and as_float64.item() == pytest.approx(expected, rel=1e-5)


def test_cpal_takes_only_matched_clusters_and_their_samples():
    # own cluster 1 has no match (zero row); other cluster 2 is reached by no matched row
    own = torch.tensor([[0.2, -0.1, 0.3], [0.1, 0.5, 0.0]])
    other = torch.tensor([[0.0, 0.4, 0.1], [0.3, 0.3, 0.9]])
    transfer = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    tau = 0.5
    p_own = softmax([own[0, 0].item(), own[0, 2].item()], tau)  # over matched own clusters 0, 2
    p_map = [p_own[1], p_own[0]]  # cluster 2 -> other 0, cluster 0 -> other 1
    p_other = softmax(other[0, :2].tolist(), tau)  # over reached other clusters 0, 1
    expected = 0.5 * (kl(p_map, p_other) + kl(p_other, p_map))
    # sample 0 belongs to matched cluster 0; sample 1 to the unmatched cluster 1: left out
    loss = cross_prediction_alignment(own, other, transfer, torch.tensor([0, 1]), tau)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert cross_prediction_alignment(own[1:], other[1:], transfer, torch.tensor([1]), tau).item() == 0.0


def test_cpal_gradient_reaches_each_prediction_only_through_its_own_kl_term():
    own = torch.tensor([[0.2, -0.1]], requires_grad=True)
    other = torch.tensor([[0.0, 0.4, 0.1]], requires_grad=True)
    transfer = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]])
    tau = 0.5
    cross_prediction_alignment(own, other, transfer, torch.tensor([0]), tau).backward()
    p_own = torch.tensor(softmax(own[0].tolist(), tau))
    p_other = torch.tensor(softmax(other[0].tolist(), tau))
    p_map = p_own @ transfer
    # d/dz 0.5 KL(sg(p_map) || softmax(z/τ)) = 0.5 (p_other - p_map) / τ: no part of KL(p_other || p_map)
    torch.testing.assert_close(other.grad[0], 0.5 * (p_other - p_map) / tau, atol=1e-6, rtol=1e-5)
    # d/dw 0.5 KL(sg(p_other) || p_own T / τ), w the own logits, by the chain rule through p_map
    d_pmap = -0.5 * p_other / p_map  # ∂/∂p_map of 0.5 Σ p_other log(p_other / p_map)
    d_pown = transfer @ d_pmap
    expected_own = p_own * (d_pown - (p_own * d_pown).sum()) / tau
    torch.testing.assert_close(own.grad[0], expected_own, atol=1e-6, rtol=1e-5)


def test_to_cross_cpal_trains_only_the_cross_modality_prediction_towards_the_own_one():
    own = torch.tensor([[0.2, -0.1]], requires_grad=True)
    other = torch.tensor([[0.0, 0.4, 0.1]], requires_grad=True)
    transfer = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]])
    tau = 0.5
    loss = cross_prediction_alignment(own, other, transfer, torch.tensor([0]), tau, direction="to_cross")
    p_own, p_other = softmax(own[0].tolist(), tau), softmax(other[0].tolist(), tau)
    p_map = [sum(p_own[i] * transfer[i, j].item() for i in range(2)) for j in range(3)]
    assert loss.item() == pytest.approx(kl(p_map, p_other), rel=1e-5)
    loss.backward()
    assert own.grad is None or not own.grad.any()  # the own-modality side only teaches
    expected = (torch.tensor(p_other) - torch.tensor(p_map)) / tau  # d KL(sg(p_map) || softmax(z/τ)) / dz
    torch.testing.assert_close(other.grad[0], expected, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="CPAL direction must be one of"):
        cross_prediction_alignment(own, other, transfer, torch.tensor([0]), tau, direction="both")


def test_plan_transfer_rows_are_row_normalised_and_dropped_matches_are_zero():
    plan = torch.tensor([[0.30, 0.03], [0.02, 0.15], [0.01, 0.16]], dtype=torch.float64)  # Kv=3, Kr=2
    matches = CrossModalMatches(torch.tensor([0, 1, -1]), torch.tensor([0, 2]), torch.zeros(3), torch.zeros(2),
                                plan)  # visible cluster 2's match was dropped
    to_infrared, to_visible = transfer_maps(matches, 3, 2, "plan")
    torch.testing.assert_close(to_infrared, torch.tensor([[0.30 / 0.33, 0.03 / 0.33], [0.02 / 0.17, 0.15 / 0.17],
                                                          [0.0, 0.0]]))
    torch.testing.assert_close(to_visible, torch.tensor([[0.30 / 0.33, 0.02 / 0.33, 0.01 / 0.33],
                                                         [0.03 / 0.34, 0.15 / 0.34, 0.16 / 0.34]]))
    hard_v, hard_r = transfer_maps(matches, 3, 2, "matches")
    torch.testing.assert_close(hard_v, torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    torch.testing.assert_close(hard_r, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    one_sided = CrossModalMatches(torch.tensor([0, 1, -1]), torch.tensor([0, -1]), torch.zeros(3), torch.zeros(2), plan)
    _, to_visible = transfer_maps(one_sided, 3, 2, "plan")  # infrared cluster 1's match dropped as well
    torch.testing.assert_close(to_visible, torch.tensor([[0.30 / 0.33, 0.02 / 0.33, 0.01 / 0.33], [0.0, 0.0, 0.0]]))
