"""MIOT.losses() against a hand computation (Kv != Kr), and the two-stream stem in training."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest_helpers import make_trainer, tiny_miot_model
from fastreid_ext.matching import CrossModalMatches
from miot.losses import transfer_maps
from miot.pseudo_labels import PseudoLabels

TAU = 0.5


def softmax(row):
    exps = [math.exp(v / TAU) for v in row]
    return [e / sum(exps) for e in exps]


def cross_entropy(row, target):
    return -math.log(softmax(row)[target])


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def dot(f, m):
    return sum(x * y for x, y in zip(f, m))


def by_hand(features, labels, modalities, memory_v, memory_r, v_to_r, r_to_v, transfer_v, transfer_r,
            cross_weight, cpal_weight):
    """The MIOT losses written out sample by sample from the method's definitions."""
    batch = len(features)
    intra = cross = cpal = 0.0
    sides = {0: (memory_v, memory_r, v_to_r, transfer_v), 1: (memory_r, memory_v, r_to_v, transfer_r)}
    for modality, (own, other, own_to_other, transfer) in sides.items():
        members = [i for i in range(batch) if modalities[i] == modality]
        clustered = [i for i in members if labels[i] >= 0]
        matched_rows = [k for k in range(len(own)) if sum(transfer[k]) > 0]
        reached = [j for j in range(len(other)) if any(transfer[k][j] > 0 for k in matched_rows)]
        intra_terms, cross_terms, cpal_terms = [], [], []
        for i in clustered:
            f, y = features[i], labels[i]
            own_logits = [dot(f, m) for m in own]
            other_logits = [dot(f, m) for m in other]
            intra_terms.append(cross_entropy(own_logits, y))
            if own_to_other[y] >= 0:
                cross_terms.append(cross_entropy(other_logits, own_to_other[y]))
            if y in matched_rows:
                p_own = softmax([own_logits[k] for k in matched_rows])
                p_map = [sum(p * transfer[k][j] for p, k in zip(p_own, matched_rows)) for j in reached]
                p_other = softmax([other_logits[j] for j in reached])
                cpal_terms.append(0.5 * (kl(p_map, p_other) + kl(p_other, p_map)))
        mean = lambda terms: sum(terms) / len(terms) if terms else 0.0  # noqa: E731
        intra += mean(intra_terms) * len(members) / batch
        cross += mean(cross_terms) * len(members) / batch
        cpal += mean(cpal_terms) * len(members) / batch
    return {"loss_intra": intra, "loss_cross": cross_weight * cross, "loss_cpal": cpal_weight * cpal}


@pytest.fixture(scope="module")
def model():
    return tiny_miot_model()


@pytest.mark.parametrize("matcher", ["one-to-one", "plan"])
def test_losses_equal_the_hand_computation_with_more_visible_than_infrared_clusters(model, matcher):
    g = torch.Generator().manual_seed(0)
    dim = 512
    model.temperature = TAU
    prototypes_v = torch.randn(3, dim, generator=g)  # Kv = 3
    prototypes_r = torch.randn(2, dim, generator=g)  # Kr = 2
    if matcher == "one-to-one":  # visible cluster 1 left without a partner
        matches = CrossModalMatches(torch.tensor([1, -1, 0]), torch.tensor([2, 0]), torch.ones(3), torch.ones(2))
    else:  # an asymmetric plan: a column- instead of a row-normalised map gives other numbers
        plan = torch.tensor([[0.25, 0.08], [0.06, 0.27], [0.02, 0.15]], dtype=torch.float64)
        plan = plan / plan.sum()
        matches = CrossModalMatches(torch.tensor([0, 1, 1]), torch.tensor([0, 2]), torch.ones(3), torch.ones(2), plan)
    transfer_v, transfer_r = transfer_maps(matches, 3, 2, "plan")
    model.set_targets(PseudoLabels(0, np.arange(3), np.arange(2), prototypes_v, prototypes_r, matches=matches))
    assert (model.cross_weight, model.cpal_weight) == (1.0, 0.5)  # MIOT.CROSS.WEIGHT, MIOT.CPAL.WEIGHT

    features = F.normalize(torch.randn(5, dim, generator=g), dim=1)
    labels = torch.tensor([0, 2, -1, 1, 0])
    modalities = torch.tensor([0, 0, 0, 1, 1])
    losses = model.losses(features, labels, modalities)
    expected = by_hand(features.tolist(), labels.tolist(), modalities.tolist(),
                       model.memory_visible.features.tolist(), model.memory_infrared.features.tolist(),
                       matches.a_to_b.tolist(), matches.b_to_a.tolist(), transfer_v.tolist(), transfer_r.tolist(),
                       1.0, 0.5)
    assert {k: v.item() for k, v in losses.items()} == pytest.approx(expected, rel=1e-4)
    model.memory_visible.pending, model.memory_infrared.pending = [], []


def test_two_stream_training_sends_infrared_images_through_the_infrared_stem(synvi_sysu, tmp_path):
    trainer = make_trainer(synvi_sysu, tmp_path, "MIOT.TWO_STREAM", "True", "SOLVER.MAX_EPOCH", "1",
                           "TEST.EVAL_PERIOD", "100", "SEED", "0")
    model = trainer.model
    visible_stem = model.backbone.conv1  # the visible stem is the backbone's own conv1..maxpool
    stem_v_before = [p.detach().clone() for p in visible_stem.parameters()]
    stem_r_before = [p.detach().clone() for p in model.stem_infrared.parameters()]
    seen = []  # per training forward: (visible images, infrared images, through visible stem, through infrared stem)
    counts = {}
    visible_stem.register_forward_hook(lambda m, i, o: counts.__setitem__("visible", i[0].shape[0]))
    model.stem_infrared.register_forward_hook(lambda m, i, o: counts.__setitem__("infrared", i[0].shape[0]))

    def record(module, args, output):
        if module.training:
            modalities = args[0]["modalities"]
            seen.append((int((modalities == 0).sum()), int((modalities == 1).sum()),
                         counts.get("visible", 0), counts.get("infrared", 0)))
        counts.clear()

    model.register_forward_hook(record)
    trainer.train()
    assert len(seen) == 3 and all(v == 8 and r == 8 for v, r, _, _ in seen)
    assert all(through_v == v and through_r == r for v, r, through_v, through_r in seen)
    assert model.stem_infrared[0] is not visible_stem
    assert any(not torch.equal(a, p) for a, p in zip(stem_r_before, model.stem_infrared.parameters()))
    assert any(not torch.equal(a, p) for a, p in zip(stem_v_before, visible_stem.parameters()))
