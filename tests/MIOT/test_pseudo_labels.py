"""MIOT's epoch targets: clusters matched after the warm-up, checkpointed with their matches."""
import numpy as np
import pytest
import torch
from fastreid.config import get_cfg

from fastreid_ext import add_ext_config
from fastreid_ext.engine.loop import EpochTargets
from miot import add_miot_config
from miot.pseudo_labels import PseudoLabels, match_clusters, matching_starts_at


def miot_cfg(**matcher):
    cfg = add_miot_config(add_ext_config(get_cfg()))
    cfg.SOLVER.MAX_EPOCH, cfg.MIOT.WARMUP_RATIO = 8, 0.25
    for key, value in matcher.items():
        cfg.MIOT.MATCHER[key] = value
    return cfg


def clusters(epoch):
    g = torch.Generator().manual_seed(0)
    protos = torch.nn.functional.normalize(torch.randn(4, 16, generator=g), dim=1)
    return EpochTargets(epoch, np.array([0, 1, 2, 3, -1]), np.array([3, 2, 1, 0]), protos,
                        protos[[3, 2, 1, 0]] + 0.01 * torch.randn(4, 16, generator=g), timings={"knn": 1.5})


def test_matching_starts_after_the_warm_up_share_of_the_epochs():
    assert matching_starts_at(miot_cfg()) == 2  # 0.25 x 8
    assert match_clusters(clusters(1), miot_cfg()).matches is None
    at_start = match_clusters(clusters(2), miot_cfg())
    assert at_start.matches is not None and at_start.matches.b_to_a.tolist() == [3, 2, 1, 0]


@pytest.mark.parametrize("name", ["none", "None"])
def test_matcher_none_never_matches(name):
    assert match_clusters(clusters(5), miot_cfg(NAME=name)).matches is None


def test_the_configured_matcher_and_its_options_are_used():
    ot = match_clusters(clusters(5), miot_cfg()).matches
    hungarian = match_clusters(clusters(5), miot_cfg(NAME="hungarian")).matches
    assert ot.plan is not None and hungarian.plan is None  # only OT has a plan
    strict = match_clusters(clusters(5), miot_cfg(THRESHOLD=1.0)).matches  # only shares of exactly 1 stay
    assert strict.num_matched_b < ot.num_matched_b == 4


def test_the_targets_keep_the_clusters_and_a_copy_of_their_timings():
    source = clusters(5)
    targets = match_clusters(source, miot_cfg())
    assert targets.epoch == 5 and targets.labels_visible is source.labels_visible
    assert targets.timings == {"knn": 1.5} and targets.timings is not source.timings


@pytest.mark.parametrize("epoch", [1, 5])  # without and with matches
def test_the_checkpointed_state_gives_back_the_same_targets(epoch):
    targets = match_clusters(clusters(epoch), miot_cfg())
    state = targets.state_dict()
    restored = PseudoLabels.from_state_dict(state)
    assert restored.epoch == epoch and np.array_equal(restored.labels_visible, targets.labels_visible)
    assert torch.equal(restored.prototypes_infrared, targets.prototypes_infrared)
    if targets.matches is None:
        assert restored.matches is None and not any(k.startswith("matches.") for k in state)
        return
    for name in ("a_to_b", "b_to_a", "a_confidence", "b_confidence", "plan", "a_candidates", "b_candidates"):
        assert torch.equal(getattr(restored.matches, name), getattr(targets.matches, name)), name
    assert restored.matches.iterations == targets.matches.iterations > 0
    assert isinstance(restored.matches.iterations, int)
    assert restored.matches.marginal_error == pytest.approx(targets.matches.marginal_error)


def test_the_checkpointed_state_of_a_matcher_without_plan_or_solver_keeps_them_absent():
    targets = match_clusters(clusters(5), miot_cfg(NAME="hungarian"))
    restored = PseudoLabels.from_state_dict(targets.state_dict())
    assert restored.matches.plan is None and restored.matches.iterations is None
    assert restored.matches.marginal_error is None
    assert torch.equal(restored.matches.a_to_b, targets.matches.a_to_b)
