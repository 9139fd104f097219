"""Pseudo labels: identical to DBSCAN on the dense reference Jaccard matrix."""
import logging

import numpy as np
import pytest

from fastreid_ext.cluster import dbscan_labels
from fastreid_ext.testing import dense_dbscan_labels, synthetic_reid_features

from .test_jaccard import reid_like, with_duplicates


@pytest.mark.parametrize("features", [
    reid_like(10, noise=0.5), reid_like(11, noise=1.0, n=300, ids=30), reid_like(12, noise=2.0),
    with_duplicates(13), with_duplicates(14, distinct=25),
], ids=["clean", "many-ids", "very-noisy", "duplicates", "duplicates-2"])
@pytest.mark.parametrize("eps,min_samples,k1,k2", [(0.6, 4, 30, 6), (0.3, 4, 20, 6), (0.5, 2, 10, 1), (0.5, 1, 5, 1)])
def test_labels_equal_the_dense_reference(features, eps, min_samples, k1, k2):
    ours = dbscan_labels(features, eps=eps, min_samples=min_samples, k1=k1, k2=k2)
    reference = dense_dbscan_labels(features, eps, min_samples, k1, k2)
    np.testing.assert_array_equal(ours, reference)  # same clusters, same numbering, same outliers


def test_clusters_recover_well_separated_identities():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(10), 12)
    features = rng.normal(size=(10, 64))[truth] + 0.2 * rng.normal(size=(120, 64))
    labels = dbscan_labels(features, eps=0.6, min_samples=4, k1=20, k2=6)
    assert len(set(labels) - {-1}) == 10
    for label in set(labels) - {-1}:
        assert len(set(truth[labels == label])) == 1


def test_all_noise_returns_all_outliers_and_says_so(caplog):
    features = np.eye(30)  # orthogonal points: no reciprocal neighbours but themselves
    with caplog.at_level(logging.WARNING):
        labels = dbscan_labels(features, eps=0.1, min_samples=4, k1=5, k2=1)
    assert np.all(labels == -1)
    assert "found no cluster: all 30 points are outliers" in caplog.text


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match=r"eps must be in \(0, 1\)"):
        dbscan_labels(np.ones((5, 3)), eps=0)
    with pytest.raises(ValueError, match="min_samples must be >= 1"):
        dbscan_labels(np.ones((5, 3)), min_samples=0)


@pytest.mark.parametrize("eps,k1,k2", [(0.6, 30, 6), (0.3, 20, 6)])
def test_the_torch_jaccard_path_gives_the_labels_of_the_scipy_path(eps, k1, k2):
    features = synthetic_reid_features(1200)  # the cluster benchmark's generator
    scipy_labels = dbscan_labels(features, eps=eps, k1=k1, k2=k2, jaccard_backend="scipy")
    torch_labels = dbscan_labels(features, eps=eps, k1=k1, k2=k2, jaccard_backend="torch")
    assert len(set(scipy_labels) - {-1}) > 5  # a set that clusters, not one of outliers only
    np.testing.assert_array_equal(torch_labels, scipy_labels)


def test_the_torch_jaccard_path_gives_the_labels_of_the_dense_reference_on_duplicates():
    features = with_duplicates(15)
    torch_labels = dbscan_labels(features, eps=0.5, min_samples=2, k1=10, k2=3, jaccard_backend="torch")
    np.testing.assert_array_equal(torch_labels, dense_dbscan_labels(features, 0.5, 2, 10, 3))


def test_eps_must_be_a_jaccard_distance_strictly_between_0_and_1():
    for eps in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"eps must be in \(0, 1\) for Jaccard distances, got"):
            dbscan_labels(np.ones((5, 3)), eps=eps)
    assert len(dbscan_labels(np.eye(5), eps=0.999, min_samples=1, k1=2, k2=1)) == 5


def test_timings_add_the_seconds_of_each_phase_to_what_the_caller_holds():
    timings = {"knn": 100.0, "jaccard": 100.0, "dbscan": 100.0}
    dbscan_labels(reid_like(3), eps=0.6, min_samples=4, k1=20, k2=6, timings=timings)
    assert set(timings) == {"knn", "jaccard", "dbscan"}
    assert all(100.0 < seconds < 160.0 for seconds in timings.values())
    fresh = {}
    dbscan_labels(reid_like(3), eps=0.6, min_samples=4, k1=20, k2=6, timings=fresh)
    assert set(fresh) == {"knn", "jaccard", "dbscan"} and all(0.0 < seconds < 1.0 for seconds in fresh.values())


def test_the_backends_and_progress_reach_the_jaccard_step(capsys, monkeypatch):
    import threading

    from tqdm import tqdm

    # this process's own lock and no monitor thread: tqdm's default lock is a semaphore shared with
    # forked processes (mutation testing runs this test in many), which one killed holder blocks for all
    monkeypatch.setattr(tqdm, "_lock", threading.RLock(), raising=False)
    monkeypatch.setattr(tqdm, "monitor_interval", 0)
    features = reid_like(4)
    with pytest.raises(ValueError, match="knn backend must be"):
        dbscan_labels(features, knn_backend="annoy")
    with pytest.raises(ValueError, match="nope"):
        dbscan_labels(features, jaccard_backend="nope")
    dbscan_labels(features, k1=20, progress=False)
    assert capsys.readouterr().err == ""
    dbscan_labels(features, k1=20, progress=True)
    bar = capsys.readouterr().err
    assert "jaccard: 100%|" in bar and "block/s]" in bar  # a tqdm bar over the blocks


def test_the_no_cluster_warning_names_the_parameters_and_the_count(caplog):
    with caplog.at_level(logging.WARNING):
        dbscan_labels(np.eye(12), eps=0.1, min_samples=3, k1=5, k2=1)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "DBSCAN (eps=0.1, min_samples=3) found no cluster: all 12 points are outliers"]


def test_the_defaults_are_cluster_contrasts():
    """eps 0.6, min_samples 4, k1 30, k2 6: ClusterContrast's values for its k-reciprocal DBSCAN."""
    import inspect

    defaults = {name: p.default for name, p in inspect.signature(dbscan_labels).parameters.items()}
    assert {k: defaults[k] for k in ("eps", "min_samples", "k1", "k2")} == {"eps": 0.6, "min_samples": 4, "k1": 30,
                                                                           "k2": 6}


def test_the_defaults_are_the_ones_used():
    """Leaving eps, min_samples, k1 and k2 out clusters as with ClusterContrast's values passed; each
    other value changes the labels of this set (so a changed default would show)."""
    features = reid_like(12, n=150, ids=8, noise=1.2)
    given = dict(eps=0.6, min_samples=4, k1=30, k2=6)
    labels = dbscan_labels(features, **given)
    np.testing.assert_array_equal(dbscan_labels(features), labels)
    for other in ({"eps": 0.55}, {"min_samples": 5}, {"k1": 31}, {"k2": 7}):
        assert not np.array_equal(dbscan_labels(features, **{**given, **other}), labels), other
