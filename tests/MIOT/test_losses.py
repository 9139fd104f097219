"""MIOT losses against hand computations on tiny tensors."""
import math

import pytest
import torch

from miot.losses import (cross_prediction_alignment, prototype_contrast, transfer_matrix_from_matches,
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


def test_cpal_is_the_symmetric_kl_between_mapped_and_other_predictions():
    own = torch.tensor([[0.2, -0.1]])
    other = torch.tensor([[0.0, 0.4, 0.1]])
    transfer = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]])
    tau = 0.5

    def softmax(row):
        exps = [math.exp(v / tau) for v in row]
        return [e / sum(exps) for e in exps]

    p_own, p_other = softmax(own[0].tolist()), softmax(other[0].tolist())
    p_map = [sum(p_own[i] * transfer[i, j].item() for i in range(2)) for j in range(3)]
    kl = lambda p, q: sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))  # noqa: E731
    expected = 0.5 * (kl(p_map, p_other) + kl(p_other, p_map))
    loss = cross_prediction_alignment(own, other, transfer, tau, torch.tensor([True]))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert cross_prediction_alignment(own, other, transfer, tau, torch.tensor([False])).item() == 0.0


def test_cpal_gradient_flows_to_both_predictions_with_the_target_detached():
    own = torch.tensor([[0.2, -0.1]], requires_grad=True)
    other = torch.tensor([[0.0, 0.4, 0.1]], requires_grad=True)
    transfer = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]])
    cross_prediction_alignment(own, other, transfer, 0.5, torch.tensor([True])).backward()
    assert own.grad.abs().sum() > 0 and other.grad.abs().sum() > 0
