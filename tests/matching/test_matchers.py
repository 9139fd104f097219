"""Prototype matching: planted correspondences, unequal sizes, thresholds, the registry."""
import pytest
import torch

from fastreid_ext.matching import MATCHER_REGISTRY, CrossModalMatches, match_prototypes


def planted(k=20, dim=32, noise=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    protos_a = torch.randn(k, dim, generator=g)
    perm = torch.randperm(k, generator=g)
    protos_b = protos_a[perm] + noise * torch.randn(k, dim, generator=g)  # b_j is a noisy a_perm[j]
    return protos_a, protos_b, perm


@pytest.mark.parametrize("method", ["ot", "hungarian"])
def test_a_planted_permutation_is_recovered_under_noise(method):
    protos_a, protos_b, perm = planted()
    matches = match_prototypes(protos_a, protos_b, method=method)
    assert torch.equal(matches.b_to_a, perm)
    assert torch.equal(matches.a_to_b[perm], torch.arange(20))
    assert (matches.a_confidence > 0.5).all() and (matches.b_confidence > 0.5).all()
    if method == "ot":  # a clear permutation: each cluster sends (almost) all its mass to its partner
        assert (matches.b_confidence > 0.99).all() and matches.iterations > 0 and matches.marginal_error < 1e-6


def test_ot_gives_every_cluster_of_the_larger_side_a_match_and_hungarian_leaves_the_surplus():
    protos_a, protos_b, perm = planted(k=6)
    # A has 12 clusters: each of B's 6 identities split in two noisy halves
    protos_a = torch.cat([protos_a, protos_a + 0.05 * torch.randn(6, 32, generator=torch.Generator().manual_seed(1))])
    matches = match_prototypes(protos_a, protos_b, method="ot")
    assert matches.num_matched_a == 12 and matches.num_matched_b == 6
    inverse = torch.argsort(perm)  # a's identity i lives at b index inverse[i]
    assert torch.equal(matches.a_to_b, torch.cat([inverse, inverse]))  # two A clusters per B cluster
    assert matches.plan.shape == (12, 6)
    torch.testing.assert_close(matches.plan.sum(1), torch.full((12,), 1 / 12), atol=1e-5, rtol=0)

    one_to_one = match_prototypes(protos_a, protos_b, method="hungarian")
    assert one_to_one.num_matched_a == 6 and one_to_one.num_matched_b == 6 and one_to_one.plan is None
    assert (one_to_one.a_confidence[one_to_one.a_to_b < 0] == 0).all()


def test_threshold_drops_low_mass_matches():
    protos_a, protos_b, _ = planted(noise=3.0, seed=2)  # mostly noise: diffuse plan
    loose = match_prototypes(protos_a, protos_b, method="ot", threshold=0.0)
    strict = match_prototypes(protos_a, protos_b, method="ot", threshold=0.9)
    assert loose.num_matched_a == 20 and strict.num_matched_a < 20
    assert (strict.a_confidence[strict.a_to_b >= 0] >= 0.9).all()
    assert (strict.a_confidence[strict.a_to_b < 0] == 0).all()


@pytest.fixture
def register():
    """MATCHER_REGISTRY.register() for one test: the names it adds are removed afterwards."""
    before = set(MATCHER_REGISTRY._obj_map)
    yield MATCHER_REGISTRY.register()
    for name in set(MATCHER_REGISTRY._obj_map) - before:
        del MATCHER_REGISTRY._obj_map[name]


def test_another_project_registers_its_own_matcher(register):
    @register
    def nearest_prototype(protos_a, protos_b):
        sims = torch.nn.functional.normalize(protos_a, dim=1) @ torch.nn.functional.normalize(protos_b, dim=1).t()
        a_conf, a_to_b = sims.max(1)
        b_conf, b_to_a = sims.max(0)
        return CrossModalMatches(a_to_b, b_to_a, a_conf, b_conf)

    protos_a, protos_b, perm = planted(seed=3)
    assert torch.equal(match_prototypes(protos_a, protos_b, method="nearest_prototype").b_to_a, perm)
    with pytest.raises(KeyError, match=r"unknown matcher 'sinkhorn3'; registered: \[.*'hungarian'.*'ot'"):
        match_prototypes(protos_a, protos_b, method="sinkhorn3")


def test_a_matcher_takes_the_options_its_signature_names():
    from fastreid_ext.matching import matcher_options

    assert matcher_options("ot") == ("reg", "max_iter", "tol", "threshold", "mutual")
    assert matcher_options("hungarian") == matcher_options("two_round_hungarian") == ("threshold", "mutual")


@pytest.mark.parametrize("method,options,message", [
    ("hungarian", {"reg": 0.1}, r"matcher 'hungarian' takes no option 'reg'; it takes threshold, mutual"),
    ("ot", {"treshold": 0.5}, r"matcher 'ot' takes no option 'treshold'; it takes reg, max_iter, tol, threshold"),
    ("two_round_hungarian", {"tol": 1e-3, "max_iter": 5},
     r"matcher 'two_round_hungarian' takes no option 'max_iter', 'tol'; it takes threshold, mutual"),
])
def test_an_option_the_matcher_does_not_take_is_an_error_naming_it(method, options, message):
    protos_a, protos_b, _ = planted(seed=3)
    with pytest.raises(TypeError, match=message):
        match_prototypes(protos_a, protos_b, method=method, **options)


def test_a_matcher_that_swallows_options_is_refused(register):
    @register
    def swallowing(protos_a, protos_b, **options):
        raise AssertionError("never called")

    protos_a, protos_b, _ = planted(seed=3)
    with pytest.raises(TypeError, match=r"matcher 'swallowing' takes \*args/\*\*kwargs: name its options"):
        match_prototypes(protos_a, protos_b, method="swallowing")


def test_bad_prototypes_are_refused():
    with pytest.raises(ValueError, match=r"protos_a must be a non-empty \(K, D\) matrix"):
        match_prototypes(torch.zeros(0, 4), torch.ones(3, 4))
    with pytest.raises(ValueError, match="protos_b contains NaN or inf"):
        match_prototypes(torch.ones(3, 4), torch.full((2, 4), float("inf")))
    with pytest.raises(ValueError, match="prototype dimensions differ: 4 vs 5"):
        match_prototypes(torch.ones(3, 4), torch.ones(2, 5), method="hungarian")


@pytest.mark.parametrize("larger_side", ["a", "b"])
def test_two_round_hungarian_gives_every_cluster_of_the_larger_side_a_partner(larger_side):
    protos, _, _ = planted(k=5, seed=4)
    noise = torch.Generator().manual_seed(5)
    halves = torch.cat([protos, protos + 0.05 * torch.randn(5, 32, generator=noise)])  # each identity split in two
    other = protos + 0.1 * torch.randn(5, 32, generator=noise)
    a, b = (halves, other) if larger_side == "a" else (other, halves)
    matches = match_prototypes(a, b, method="two_round_hungarian")
    to_smaller = matches.a_to_b if larger_side == "a" else matches.b_to_a
    to_larger = matches.b_to_a if larger_side == "a" else matches.a_to_b
    assert torch.equal(to_smaller, torch.arange(10) % 5)  # both halves of identity i -> i
    # the smaller side keeps its first-round (one-to-one) partner: one of the two halves
    assert ((to_larger % 5) == torch.arange(5)).all() and len(set(to_larger.tolist())) == 5
    single = match_prototypes(a, b, method="hungarian")
    single_larger = single.a_to_b if larger_side == "a" else single.b_to_a
    assert (single_larger < 0).sum() == 5 and (to_smaller >= 0).all()


def test_two_round_hungarian_matches_three_times_larger_sides_in_three_rounds(monkeypatch):
    import fastreid_ext.matching.matchers as matchers

    rounds = []
    solve = matchers.linear_sum_assignment
    monkeypatch.setattr(matchers, "linear_sum_assignment", lambda cost: rounds.append(cost.shape) or solve(cost))
    protos, _, _ = planted(k=3, seed=6)
    noise = torch.Generator().manual_seed(7)
    a = torch.cat([protos + 0.05 * torch.randn(3, 32, generator=noise) for _ in range(3)])  # 9 clusters
    matches = match_prototypes(a, protos, method="two_round_hungarian")
    assert rounds == [(9, 3), (6, 3), (3, 3)]  # each round matches 3 of the still unmatched clusters
    assert torch.equal(matches.a_to_b, torch.arange(9) % 3) and matches.num_matched_b == 3


def brute_force_selection(a_to_b, a_conf, b_to_a, b_conf, threshold, mutual):
    """Reference: loop over the clusters of each side."""
    keep_a, keep_b = [], []
    for i, j in enumerate(a_to_b.tolist()):
        ok = j >= 0 and a_conf[i] >= threshold
        if mutual:
            ok = ok and b_to_a[j] == i and b_conf[j] >= threshold
        keep_a.append(j if ok else -1)
    for j, i in enumerate(b_to_a.tolist()):
        ok = i >= 0 and b_conf[j] >= threshold
        if mutual:
            ok = ok and a_to_b[i] == j and a_conf[i] >= threshold
        keep_b.append(i if ok else -1)
    return keep_a, keep_b


def test_the_selection_keeps_exactly_the_mutual_pairs_above_the_threshold_on_a_hand_made_plan():
    from fastreid_ext.matching import select_matches

    # A0 <-> B1 mutual and confident; A1 -> B1 but B1 -> A0 (not mutual); A2 <-> B0 mutual but B0 weak
    a_to_b, a_conf = torch.tensor([1, 1, 0]), torch.tensor([0.9, 0.8, 0.7])
    b_to_a, b_conf = torch.tensor([2, 0]), torch.tensor([0.3, 0.95])
    selected = select_matches(a_to_b, a_conf, b_to_a, b_conf, threshold=0.5, mutual=True)
    assert selected.a_to_b.tolist() == [1, -1, -1] and selected.b_to_a.tolist() == [-1, 0]
    assert selected.a_confidence.tolist() == pytest.approx([0.9, 0.0, 0.0])
    assert selected.a_candidates.tolist() == [1, 1, 0] and selected.b_candidates.tolist() == [2, 0]
    without_mutual = select_matches(a_to_b, a_conf, b_to_a, b_conf, threshold=0.5)
    assert without_mutual.a_to_b.tolist() == [1, 1, 0] and without_mutual.b_to_a.tolist() == [-1, 0]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold,mutual", [(0.0, True), (0.4, True), (0.4, False)])
def test_ot_selection_equals_the_brute_force_rule_on_its_own_plan(seed, threshold, mutual):
    g = torch.Generator().manual_seed(seed)
    protos_a, protos_b = torch.randn(9, 16, generator=g), torch.randn(6, 16, generator=g)  # Ka != Kb
    matches = match_prototypes(protos_a, protos_b, method="ot", reg=0.1, threshold=threshold, mutual=mutual)
    plan = matches.plan.double()
    a_conf, a_to_b = (plan / plan.sum(1, keepdim=True)).max(1)
    b_conf, b_to_a = (plan / plan.sum(0, keepdim=True)).max(0)
    expected_a, expected_b = brute_force_selection(a_to_b, a_conf.tolist(), b_to_a, b_conf.tolist(), threshold, mutual)
    assert matches.a_to_b.tolist() == expected_a and matches.b_to_a.tolist() == expected_b
    assert ((matches.a_confidence > 0) == (matches.a_to_b >= 0)).all()


def test_ot_confidences_are_row_and_column_shares_of_the_plan_in_both_directions():
    protos_a, protos_b, perm = planted(k=6)
    protos_a = torch.cat([protos_a, protos_a[:3]])  # Ka = 9, Kb = 6
    matches = match_prototypes(protos_a, protos_b, method="ot")
    plan = matches.plan.double()
    rows = torch.arange(9)
    expected_a = plan[rows, matches.a_to_b] / plan.sum(1)
    torch.testing.assert_close(matches.a_confidence.double(), expected_a, atol=1e-6, rtol=0)
    cols = torch.arange(6)
    torch.testing.assert_close(matches.b_confidence.double(), plan[matches.b_to_a, cols] / plan.sum(0), atol=1e-6,
                               rtol=0)


def test_mutual_two_round_hungarian_keeps_the_one_to_one_round_only():
    protos_a, protos_b, _ = planted(k=4)
    protos_a = torch.cat([protos_a, protos_a[:2] + 0.01])  # Ka = 6: two clusters get a second-round partner
    full = match_prototypes(protos_a, protos_b, method="two_round_hungarian")
    mutual = match_prototypes(protos_a, protos_b, method="two_round_hungarian", mutual=True)
    assert full.num_matched_a == 6 and mutual.num_matched_a == 4 == mutual.num_matched_b


def test_a_confidence_equal_to_the_threshold_is_kept_and_no_threshold_keeps_every_match():
    from fastreid_ext.matching import select_matches

    a_to_b, a_conf, b_to_a, b_conf = torch.tensor([0, 1]), torch.tensor([0.5, 0.2]), torch.tensor([0, 1]), \
        torch.tensor([0.5, 0.1])
    at = select_matches(a_to_b, a_conf, b_to_a, b_conf, threshold=0.5)
    assert at.a_to_b.tolist() == [0, -1] and at.b_to_a.tolist() == [0, -1]
    default = select_matches(a_to_b, a_conf, b_to_a, b_conf)
    assert default.a_to_b.tolist() == [0, 1] and default.b_to_a.tolist() == [0, 1]


def test_a_matcher_without_options_says_it_takes_none(register):
    @register
    def optionless(protos_a, protos_b):
        raise AssertionError("never called")

    protos_a, protos_b, _ = planted(seed=3)
    with pytest.raises(TypeError, match=r"matcher 'optionless' takes no option 'reg'; it takes none$"):
        match_prototypes(protos_a, protos_b, method="optionless", reg=0.1)
