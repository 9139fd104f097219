"""evaluate_cross_modality against a slow, literal implementation of each protocol's rules."""
import numpy as np
import pytest

from fastreid_ext.evaluation import evaluate_cross_modality


def brute_force(distmat, q_pids, g_pids, q_camids, g_camids, protocol, max_rank):
    """Rank by (distance, gallery index); apply the rules one query at a time, in plain Python."""
    cmcs, aps, inps = [], [], []
    for q in range(len(q_pids)):
        ranked = sorted(range(len(g_pids)), key=lambda g: (distmat[q][g], g))
        if protocol == "sysu" and q_camids[q] == 3:
            ranked = [g for g in ranked if g_camids[g] != 2]
        hits = [g_pids[g] == q_pids[q] for g in ranked]
        if not any(hits):
            continue
        if protocol == "sysu":  # CMC over distinct identities in rank order
            distinct = []
            for g in ranked:
                if g_pids[g] not in distinct:
                    distinct.append(g_pids[g])
            first = distinct.index(q_pids[q])
        else:
            first = hits.index(True)
        cmcs.append([1.0 if r >= first else 0.0 for r in range(max_rank)])
        positions = [i + 1 for i, h in enumerate(hits) if h]
        aps.append(sum((k + 1) / p for k, p in enumerate(positions)) / len(positions))
        inps.append(len(positions) / positions[-1])
    return np.mean(cmcs, axis=0), float(np.mean(aps)), float(np.mean(inps))


def random_problem(seed, num_q=15, num_g=40, num_ids=8, ties=False):
    rng = np.random.default_rng(seed)
    distmat = rng.random((num_q, num_g))
    if ties:  # coarse values: many exact ties, broken by gallery index in both implementations
        distmat = np.round(distmat * 4) / 4
    q_pids, g_pids = rng.integers(0, num_ids, num_q), rng.integers(0, num_ids, num_g)
    q_camids, g_camids = rng.choice([3, 6], num_q), rng.choice([1, 2, 4, 5], num_g)
    return distmat, q_pids, g_pids, q_camids, g_camids


@pytest.mark.parametrize("protocol", ["sysu", "regdb", "llcm"])
@pytest.mark.parametrize("seed", range(6))
def test_metrics_equal_brute_force(protocol, seed):
    problem = random_problem(seed, ties=seed % 2 == 1)
    cmc, mAP, mINP = evaluate_cross_modality(*problem, protocol=protocol, max_rank=5)
    ref_cmc, ref_mAP, ref_mINP = brute_force(*problem, protocol, 5)
    np.testing.assert_allclose(cmc, ref_cmc)
    assert mAP == pytest.approx(ref_mAP) and mINP == pytest.approx(ref_mINP)


def test_sysu_ignores_camera_2_gallery_for_camera_3_queries_only():
    # the only true match of each query sits in camera 2, ranked first
    distmat = np.array([[0.1, 0.5, 0.6], [0.1, 0.5, 0.6]])
    g_pids, g_camids = np.array([7, 8, 7]), np.array([2, 1, 4])
    q_pids, q_camids = np.array([7, 7]), np.array([3, 6])
    cmc, _, _ = evaluate_cross_modality(distmat, q_pids, g_pids, q_camids, g_camids, "sysu", max_rank=3)
    # camera-3 query: its cam-2 match is removed -> match at distinct rank 2; camera-6 query: rank 1
    np.testing.assert_allclose(cmc, [0.5, 1.0, 1.0])
    cmc, _, _ = evaluate_cross_modality(distmat, q_pids, g_pids, q_camids, g_camids, "regdb", max_rank=3)
    np.testing.assert_allclose(cmc, [1.0, 1.0, 1.0])


def test_sysu_cmc_counts_distinct_identities_while_map_counts_images():
    # ranking: id 5, id 5, id 5, id 9 (query id 9): image rank 4, distinct-identity rank 2
    distmat = np.array([[0.1, 0.2, 0.3, 0.4]])
    g_pids, g_camids = np.array([5, 5, 5, 9]), np.array([1, 1, 1, 1])
    cmc, mAP, mINP = evaluate_cross_modality(distmat, np.array([9]), g_pids, np.array([6]), g_camids, "sysu", 4)
    np.testing.assert_allclose(cmc, [0, 1, 1, 1])
    assert mAP == pytest.approx(0.25) and mINP == pytest.approx(0.25)
    cmc, _, _ = evaluate_cross_modality(distmat, np.array([9]), g_pids, np.array([6]), g_camids, "llcm", 4)
    np.testing.assert_allclose(cmc, [0, 0, 0, 1])


def test_short_galleries_pad_the_cmc_and_bad_input_is_refused():
    cmc, _, _ = evaluate_cross_modality(np.array([[0.2, 0.1]]), [1], [1, 2], [6], [1, 1], "regdb", max_rank=5)
    np.testing.assert_allclose(cmc, [0, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="protocol must be one of"):
        evaluate_cross_modality(np.zeros((1, 1)), [1], [1], [3], [1], "market")
    with pytest.raises(ValueError, match="distmat has shape"):
        evaluate_cross_modality(np.zeros((2, 1)), [1], [1], [3], [1], "sysu")
    with pytest.raises(ValueError, match="^no query has a matching identity in the gallery: check the query/gallery "
                                         "split$"):
        evaluate_cross_modality(np.zeros((1, 1)), [1], [2], [3], [1], "sysu")


def test_the_padding_repeats_the_curves_last_value_and_an_empty_ranking_pads_with_zeros():
    from fastreid_ext.evaluation.rank import _cmc_row

    np.testing.assert_array_equal(_cmc_row(np.array([0, 0, 1]), 5), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(_cmc_row(np.array([], dtype=np.int64), 3), [0, 0, 0])


def test_defaults_are_the_sysu_protocol_and_ranks_up_to_20():
    rng = np.random.default_rng(4)
    distmat = rng.random((6, 30))
    q_pids, g_pids = rng.integers(0, 5, 6), np.arange(30) % 5
    q_cams, g_cams = np.full(6, 3), np.where(np.arange(30) % 2, 2, 1)  # camera 3 queries: camera 2 ignored
    default = evaluate_cross_modality(distmat, q_pids, g_pids, q_cams, g_cams)
    sysu = evaluate_cross_modality(distmat, q_pids, g_pids, q_cams, g_cams, "sysu", max_rank=20)
    regdb = evaluate_cross_modality(distmat, q_pids, g_pids, q_cams, g_cams, "regdb", max_rank=20)
    assert len(default[0]) == 20 and np.array_equal(default[0], sysu[0]) and default[1:] == sysu[1:]
    assert default[1] != regdb[1]  # the protocol matters on these cameras
