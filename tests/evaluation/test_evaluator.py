"""CrossModalityEvaluator runs the protocol's trials on features arriving in any order."""
import numpy as np
import pytest
import torch

from fastreid_ext.data import Sample
from fastreid_ext.evaluation import CrossModalityEvaluator, evaluate_cross_modality, sample_random_gallery


def make_split(seed=0, num_ids=6):
    rng = np.random.default_rng(seed)
    query = [Sample(f"q{i}", int(rng.integers(num_ids)), int(rng.choice([3, 6])), 1) for i in range(20)]
    gallery = [Sample(f"g{i}", i % num_ids, int(rng.choice([1, 2, 4, 5])), 0) for i in range(40)]
    features = torch.randn(60, 8, generator=torch.Generator().manual_seed(seed))
    return query, gallery, features


def feed(evaluator, features, batch=7, seed=0):
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        evaluator.process({"index": idx}, features[idx])


@pytest.mark.parametrize("protocol,random_gallery", [("sysu", True), ("regdb", False), ("llcm", True)])
def test_results_are_trial_means_of_the_protocol_metrics(protocol, random_gallery):
    query, gallery, features = make_split()
    evaluator = CrossModalityEvaluator(query, gallery, protocol, random_gallery, num_trials=4, max_rank=5)
    feed(evaluator, features)
    results = evaluator.evaluate()

    normed = torch.nn.functional.normalize(features, dim=1)
    distmat = (1 - normed[:20] @ normed[20:].t()).numpy()
    q_pids, q_cams = np.array([s.pid for s in query]), np.array([s.camid for s in query])
    g_pids, g_cams = np.array([s.pid for s in gallery]), np.array([s.camid for s in gallery])
    r1, maps, minps = [], [], []
    for trial in range(4 if random_gallery else 1):
        keep = sample_random_gallery(g_pids, g_cams, trial) if random_gallery else np.arange(40)
        cmc, mAP, mINP = evaluate_cross_modality(distmat[:, keep], q_pids, g_pids[keep], q_cams, g_cams[keep],
                                                 protocol, max_rank=5)
        r1.append(cmc[0] * 100)
        maps.append(mAP * 100)
        minps.append(mINP * 100)
    assert results["Rank-1"] == pytest.approx(np.mean(r1)) and results["mAP"] == pytest.approx(np.mean(maps))
    assert results["mINP"] == pytest.approx(np.mean(minps))
    assert results["metric"] == pytest.approx((np.mean(r1) + np.mean(maps)) / 2)  # fastreid's model selection
    if random_gallery:
        for name, values in (("Rank-1", r1), ("mAP", maps), ("mINP", minps)):
            assert results[f"{name}_std"] == pytest.approx(np.std(values))
    assert set(results) >= {"Rank-1", "Rank-5", "mAP", "mINP"} and "Rank-10" not in results  # max_rank 5
    assert ("Rank-1_std" in results) == random_gallery


def test_missing_features_are_reported():
    query, gallery, features = make_split()
    evaluator = CrossModalityEvaluator(query, gallery, "sysu", True, num_trials=2)
    evaluator.process({"index": torch.arange(10)}, features[:10])
    with pytest.raises(RuntimeError, match="features for 10 of 60 test images"):
        evaluator.evaluate()


def test_defaults_are_ten_trials_of_single_shot_galleries_and_ranks_up_to_20():
    query, gallery, features = make_split()
    evaluator = CrossModalityEvaluator(query, gallery, "sysu", True)
    feed(evaluator, features)
    results = evaluator.evaluate()
    explicit = CrossModalityEvaluator(query, gallery, "sysu", True, num_trials=10, shots=1, max_rank=20)
    feed(explicit, features, seed=1)
    assert results == pytest.approx(explicit.evaluate()) and "Rank-20" in results and "Rank-25" not in results
    two = CrossModalityEvaluator(query, gallery, "sysu", True, num_trials=2)
    feed(two, features)
    assert "Rank-1_std" in two.evaluate()  # from two trials on
    multi = CrossModalityEvaluator(query, gallery, "sysu", True, num_trials=2, shots=3)
    feed(multi, features)
    assert multi.evaluate()["mAP"] != pytest.approx(two.evaluate()["mAP"])  # shots reach the gallery draw


def test_euclidean_metric_ranks_by_the_distance_of_the_raw_features():
    query, gallery, features = make_split()
    features = features * torch.linspace(0.2, 5.0, 60).unsqueeze(1)  # norms differ: cosine would rank otherwise
    evaluator = CrossModalityEvaluator(query, gallery, "regdb", False, metric="euclidean", max_rank=5)
    feed(evaluator, features)
    q_pids, q_cams = np.array([s.pid for s in query]), np.array([s.camid for s in query])
    g_pids, g_cams = np.array([s.pid for s in gallery]), np.array([s.camid for s in gallery])
    distmat = np.linalg.norm(features[:20, None].numpy() - features[None, 20:].numpy(), axis=2)
    cmc, mAP, _ = evaluate_cross_modality(distmat, q_pids, g_pids, q_cams, g_cams, "regdb", max_rank=5)
    results = evaluator.evaluate()
    assert results["Rank-1"] == pytest.approx(cmc[0] * 100, abs=1e-4) and results["mAP"] == pytest.approx(mAP * 100)


def test_on_two_ranks_rank_0_evaluates_every_ranks_features_and_rank_1_returns_nothing(monkeypatch):
    from fastreid_ext.evaluation import evaluator as module

    query, gallery, features = make_split()
    single = CrossModalityEvaluator(query, gallery, "sysu", True, num_trials=3)
    feed(single, features)
    expected = single.evaluate()
    ranks = [CrossModalityEvaluator(query, gallery, "sysu", True, num_trials=3) for _ in range(2)]
    order = torch.randperm(60, generator=torch.Generator().manual_seed(3))
    for rank, evaluator in enumerate(ranks):
        idx = order[rank::2]
        evaluator.process({"index": idx}, features[idx])
    destinations = []

    def gather(data, dst=None):
        destinations.append(dst)
        other = ranks[1]._features if data is ranks[0]._features else ranks[1]._indices
        return [data, other]

    monkeypatch.setattr(module.comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(module.comm, "synchronize", lambda: None)
    monkeypatch.setattr(module.comm, "gather", gather)
    monkeypatch.setattr(module.comm, "is_main_process", lambda: True)
    assert ranks[0].evaluate() == pytest.approx(expected) and destinations == [0, 0]
    monkeypatch.setattr(module.comm, "is_main_process", lambda: False)
    assert ranks[0].evaluate() == {}
