"""Prototype memory: similarities forward, gradient, queued momentum update applied after the step."""
import pytest
import torch
import torch.nn.functional as F

from miot.memory import PrototypeMemory


def test_forward_is_the_similarity_to_every_prototype():
    memory = PrototypeMemory(3, momentum=0.1)
    memory.reset(torch.tensor([[1.0, 0, 0], [0, 2.0, 0]]))
    inputs = torch.tensor([[0.6, 0.8, 0.0]])
    torch.testing.assert_close(memory(inputs, torch.tensor([0])), torch.tensor([[0.6, 0.8]]))


def test_backward_updates_the_target_rows_with_momentum_and_renormalises():
    memory = PrototypeMemory(2, momentum=0.1)
    memory.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]))
    inputs = torch.tensor([[0.0, 1.0], [1.0, 0.0]], requires_grad=True)
    before = memory.features.clone()
    logits = memory(inputs, torch.tensor([0, -1]))  # first sample updates prototype 0; second: no update
    logits.sum().backward()
    torch.testing.assert_close(memory.features, before)  # nothing changes until the step is over
    memory.apply_updates()
    expected_row0 = F.normalize(0.1 * torch.tensor([1.0, 0.0]) + 0.9 * torch.tensor([0.0, 1.0]), dim=0)
    torch.testing.assert_close(memory.features[0], expected_row0)
    torch.testing.assert_close(memory.features[1:], before[1:])
    # d(sum of logits)/d input = sum of the memory rows
    torch.testing.assert_close(inputs.grad, before.sum(0).expand(2, 2))
    assert memory.pending == []


def test_samples_of_one_prototype_update_it_one_after_the_other():
    memory = PrototypeMemory(2, momentum=0.5)
    memory.reset(torch.tensor([[1.0, 0.0]]))
    inputs = torch.tensor([[0.0, 1.0], [0.0, 1.0]], requires_grad=True)
    memory(inputs, torch.tensor([0, 0])).sum().backward()
    memory.apply_updates()
    first = F.normalize(torch.tensor([0.5, 0.5]), dim=0)
    second = F.normalize(0.5 * first + 0.5 * torch.tensor([0.0, 1.0]), dim=0)
    torch.testing.assert_close(memory.features[0], second)


def test_memory_is_not_part_of_the_model_state_dict():
    memory = PrototypeMemory(4)
    memory.reset(torch.randn(5, 4))
    assert "features" not in memory.state_dict()


def sequential_update(features, momentum, queued):
    """The definition: one queued sample after the other."""
    features = features.clone()
    for inputs, targets in queued:
        for x, y in zip(inputs, targets.tolist()):
            row = momentum * features[y] + (1.0 - momentum) * x
            features[y] = row / row.norm().clamp_min(1e-12)
    return features


def test_vectorised_updates_equal_the_sequential_definition_in_queue_order():
    g = torch.Generator().manual_seed(0)
    memory = PrototypeMemory(16, momentum=0.2)
    memory.reset(torch.randn(6, 16, generator=g))
    queued = [(F.normalize(torch.randn(12, 16, generator=g), dim=1), torch.randint(0, 6, (12,), generator=g))
              for _ in range(3)]  # three steps' worth, rows repeating within and across them
    initial = memory.features.clone()
    expected = sequential_update(initial, 0.2, queued)
    memory.pending = list(queued)
    memory.apply_updates()
    torch.testing.assert_close(memory.features, expected, atol=1e-6, rtol=1e-6)
    assert memory.pending == []
    # the order matters: the same samples applied in reverse order give another memory
    backwards = sequential_update(initial, 0.2, [(x.flip(0), y.flip(0)) for x, y in reversed(queued)])
    assert not torch.allclose(backwards, expected, atol=1e-3)


def _model_with_one_match(update_other: bool, alternate: bool = False, epoch: int = 1):
    import numpy as np

    from conftest_helpers import tiny_miot_model
    from fastreid_ext.matching import select_matches
    from miot.pseudo_labels import PseudoLabels

    model = tiny_miot_model()
    model.update_other_memory, model.alternate_cross = update_other, alternate
    g = torch.Generator().manual_seed(0)
    matches = select_matches(torch.tensor([1, 0]), torch.ones(2), torch.tensor([1, 0, -1]),
                             torch.tensor([1.0, 1.0, 0.0]))  # visible 0 <-> infrared 1, visible 1 <-> infrared 0
    model.set_targets(PseudoLabels(epoch, np.array([0, 0]), np.array([2, 2]), torch.randn(2, 512, generator=g),
                                   torch.randn(3, 512, generator=g), matches=matches))
    batch = {"images": torch.rand(2, 3, 32, 16, generator=g) * 255, "modalities": torch.tensor([0, 0]),
             "index": torch.tensor([0, 1])}  # two visible images of visible cluster 0
    return model, batch


def test_the_cross_update_moves_the_other_memory_at_the_matched_row_and_nowhere_else():
    model, batch = _model_with_one_match(update_other=True)
    before = model.memory_infrared.features.clone()
    features = model.embed(batch["images"], batch["modalities"])
    sum(model.losses(features, torch.tensor([0, 0]), batch["modalities"]).values()).backward()
    model.apply_updates()
    after = model.memory_infrared.features
    assert torch.equal(after[[0, 2]], before[[0, 2]])  # unmatched rows untouched
    expected = before[1]
    for f in features.detach():  # visible cluster 0 is matched to infrared row 1: both samples, in order
        expected = torch.nn.functional.normalize(0.1 * expected + 0.9 * f, dim=0)
    torch.testing.assert_close(after[1], expected)

    model, batch = _model_with_one_match(update_other=False)
    before = model.memory_infrared.features.clone()
    features = model.embed(batch["images"], batch["modalities"])
    sum(model.losses(features, torch.tensor([0, 0]), batch["modalities"]).values()).backward()
    model.apply_updates()
    assert torch.equal(model.memory_infrared.features, before)  # without the key the other memory stays


@pytest.mark.parametrize("epoch,takes_cross", [(0, True), (1, False)])
def test_alternation_gives_the_cross_term_to_visible_samples_in_even_epochs_only(epoch, takes_cross):
    model, batch = _model_with_one_match(update_other=False, alternate=True, epoch=epoch)
    features = model.embed(batch["images"], batch["modalities"])
    losses = model.losses(features, torch.tensor([0, 0]), batch["modalities"])
    assert (losses["loss_cross"].item() > 0) == takes_cross


def test_a_new_memory_is_empty_outside_the_state_dict_and_updates_with_clustercontrasts_momentum():
    memory = PrototypeMemory(3)
    assert memory.features.shape == (0, 3) and memory.pending == [] and "features" not in memory.state_dict()
    memory.apply_updates()  # nothing queued: nothing to do
    memory.reset(torch.tensor([[1.0, 0.0, 0.0]]))
    inputs = torch.tensor([[0.0, 1.0, 0.0]], requires_grad=True)
    memory(inputs, torch.tensor([0])).sum().backward()
    memory.apply_updates()
    torch.testing.assert_close(memory.features[0], F.normalize(torch.tensor([0.1, 0.9, 0.0]), dim=0))  # momentum 0.1


def test_lookups_work_in_the_inputs_precision():
    memory = PrototypeMemory(2)
    memory.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    inputs = torch.tensor([[0.6, 0.8]], dtype=torch.bfloat16, requires_grad=True)
    logits = memory(inputs, torch.tensor([1]))
    assert logits.dtype == torch.bfloat16
    logits.sum().backward()
    assert inputs.grad.dtype == torch.bfloat16 and memory.features.dtype == torch.float32
