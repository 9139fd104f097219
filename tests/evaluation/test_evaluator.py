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
    r1, maps = [], []
    for trial in range(4 if random_gallery else 1):
        keep = sample_random_gallery(g_pids, g_cams, trial) if random_gallery else np.arange(40)
        cmc, mAP, _ = evaluate_cross_modality(distmat[:, keep], q_pids, g_pids[keep], q_cams, g_cams[keep],
                                              protocol, max_rank=5)
        r1.append(cmc[0] * 100)
        maps.append(mAP * 100)
    assert results["Rank-1"] == pytest.approx(np.mean(r1)) and results["mAP"] == pytest.approx(np.mean(maps))
    assert set(results) >= {"Rank-1", "Rank-5", "mAP", "mINP"} and "Rank-10" not in results  # max_rank 5
    assert ("Rank-1_std" in results) == random_gallery


def test_missing_features_are_reported():
    query, gallery, features = make_split()
    evaluator = CrossModalityEvaluator(query, gallery, "sysu", True, num_trials=2)
    evaluator.process({"index": torch.arange(10)}, features[:10])
    with pytest.raises(RuntimeError, match="features for 10 of 60 test images"):
        evaluator.evaluate()
