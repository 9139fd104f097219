"""Exact kNN: same neighbours, in the documented order, from every backend."""
import sys

import numpy as np
import pytest

from fastreid_ext.cluster.knn import exact_knn, pair_similarity
from fastreid_ext.testing import dense_knn

from .test_jaccard import with_duplicates


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_neighbours_equal_a_brute_force_ranking_with_index_tie_break(backend):
    for features in (np.random.default_rng(0).normal(size=(300, 24)), with_duplicates(1)):
        x = (features / np.linalg.norm(features, axis=1, keepdims=True)).astype(np.float32)
        idx, sims = exact_knn(x, 15, backend)
        x64 = x.astype(np.float64)
        np.testing.assert_array_equal(idx, dense_knn(x64, 15))
        np.testing.assert_allclose(sims, np.take_along_axis(x64 @ x64.T, idx, 1), atol=1e-6)


def test_groups_of_duplicates_larger_than_the_search_are_ranked_exactly():
    x = np.repeat(np.eye(4), 30, axis=0)  # 4 groups of 30 identical points
    idx, _ = exact_knn(x, 10, "faiss")
    np.testing.assert_array_equal(idx[45], np.arange(30, 40))  # the group's 10 smallest indices


def test_cuts_guarantee_exact_neighbourhood_sets():
    x = np.repeat(np.eye(6), 5, axis=0).astype(np.float32)  # groups of 5 ties
    idx, _ = exact_knn(x, 12, "faiss", cuts=(3, 7))
    reference = dense_knn(x.astype(np.float64), 12)
    for cut in (3, 7, 12):
        assert [set(row) for row in idx[:, :cut]] == [set(row) for row in reference[:, :cut]]


def test_backends_resolve_by_what_is_installed(monkeypatch):
    """auto: faiss on a CPU machine; with CUDA, faiss-gpu where faiss has GPU support, else torch-cuda."""
    import types

    from fastreid_ext import utils
    from fastreid_ext.cluster.knn import resolve_backend

    for name in ("faiss", "faiss-gpu", "torch", "torch-cuda"):
        assert resolve_backend(name) == name
    with pytest.raises(ValueError, match="knn backend must be auto, faiss, faiss-gpu, torch or torch-cuda; got 'FAISS'"):
        resolve_backend("FAISS")
    monkeypatch.setattr(utils, "cuda_usable", lambda: False)
    assert resolve_backend() == "faiss"
    monkeypatch.setattr(utils, "cuda_usable", lambda: True)
    monkeypatch.setitem(sys.modules, "faiss", types.SimpleNamespace())  # faiss-cpu: no GPU resources
    assert resolve_backend() == "torch-cuda"
    monkeypatch.setitem(sys.modules, "faiss", types.SimpleNamespace(StandardGpuResources=object))
    assert resolve_backend("auto") == "faiss-gpu"


def test_bad_k_is_refused():
    with pytest.raises(ValueError, match=r"k must be in \[1, N=3\]"):
        exact_knn(np.eye(3), 4)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_only_rows_with_near_ties_are_re_ranked(backend, monkeypatch):
    """The float32 search answers rows without near-ties: the float64 re-ranking and the
    exhaustive pass are for the few rows whose candidates are within float32 error."""
    from fastreid_ext.cluster import knn

    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 32)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    k = 10
    sims = features.astype(np.float64) @ features.T.astype(np.float64)
    top = -np.sort(-sims, axis=1)[:, :k + 1]
    near_tied = int((-np.diff(top, axis=1) < 1e-5).any(axis=1).sum())
    ranked_rows = []
    original = knn._rank
    monkeypatch.setattr(knn, "_rank", lambda cand, sims64, k: ranked_rows.append(len(cand)) or original(cand, sims64, k))
    idx, values = exact_knn(features, k, backend)
    np.testing.assert_array_equal(idx, dense_knn(features.astype(np.float64), k))
    assert sum(ranked_rows) <= near_tied + 2, (ranked_rows, near_tied)
    # the rows it did not re-rank carry the float32 search's similarities, accurate to float32
    np.testing.assert_allclose(values, np.take_along_axis(sims, idx, 1), atol=1e-5)


@pytest.mark.parametrize("backend,search,device", [("faiss", "_faiss_search", False), ("faiss-gpu", "_faiss_search", True),
                                                   ("torch", "_torch_search", "cpu"),
                                                   ("torch-cuda", "_torch_search", "cuda")])
def test_each_backend_runs_its_own_search(backend, search, device, monkeypatch):
    """The named backend's search runs, on the device it names (spied: no GPU is needed)."""
    from fastreid_ext.cluster import knn

    x = np.eye(5, dtype=np.float32)
    calls = []
    for name in ("_faiss_search", "_torch_search"):
        monkeypatch.setattr(knn, name, lambda f, k, where, name=name: calls.append((name, where)) or
                            (np.tile(np.arange(5), (5, 1)), np.eye(5, dtype=np.float32)))
    exact_knn(x, 2, backend)
    assert calls == [(search, device)]


def test_the_default_backend_and_a_single_neighbour():
    x = np.random.default_rng(3).normal(size=(50, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    idx, _ = exact_knn(x, 1)  # backend "auto": faiss on this CPU
    np.testing.assert_array_equal(idx[:, 0], np.arange(50))
    np.testing.assert_array_equal(exact_knn(x, 5)[0], dense_knn(x.astype(np.float64), 5))


def test_similarities_are_those_of_the_float32_features():
    """float64 input is rounded to float32 first: two points equal in float32 are ties, ranked by index,
    even where their float64 values would order them the other way."""
    rng = np.random.default_rng(4)
    a = rng.normal(size=8).astype(np.float32)
    a /= np.linalg.norm(a)
    query = a + 0.05 * rng.normal(size=8).astype(np.float32)
    query /= np.linalg.norm(query)
    a, query = a.astype(np.float64), query.astype(np.float64)
    # a quarter of a float32 step towards the query: closer in float64, the same point in float32
    b = a + 0.25 * np.abs(np.spacing(a.astype(np.float32))).astype(np.float64) * np.sign(query)
    assert np.array_equal(a.astype(np.float32), b.astype(np.float32)) and query @ b - query @ a > 1e-9
    others = rng.normal(size=(6, 8))
    x = np.vstack([query, a, b, others / np.linalg.norm(others, axis=1, keepdims=True)])
    idx, sims = exact_knn(x, 3, "faiss")
    np.testing.assert_array_equal(idx[0], [0, 1, 2])  # a (index 1) before b: equal in float32
    assert sims[0, 1] == sims[0, 2]


def re_ranked_rows(monkeypatch, x, k, cuts):
    """The rows exact_knn sends to the float64 re-ranking."""
    from fastreid_ext.cluster import knn

    rows, original = [], knn.pair_similarity
    monkeypatch.setattr(knn, "pair_similarity", lambda f, r, c, **kw: rows.extend(r.tolist()) or original(f, r, c, **kw))
    idx, _ = exact_knn(x, k, "faiss", cuts=cuts)
    return set(rows), idx


@pytest.mark.parametrize("cut", [1, 4])
def test_a_near_tie_across_a_cut_is_re_ranked_and_one_elsewhere_is_not(cut, monkeypatch):
    """Row 0's neighbours on a circle have distinct similarities except one tie: between places cut - 1
    and cut (a duplicate of itself for cut 1) it decides the set idx[:, :cut] and is re-ranked; two
    places further it decides nothing that was asked for and is left to the float32 search."""
    def circle(tie_after):
        angles = [0.0] + [0.1 * j for j in range(1, 11)]
        angles.insert(tie_after + 1, -angles[tie_after] if tie_after else 0.0)  # a mirror (or a copy) of one
        return np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)

    k = 10  # with 12 points every one is a candidate: no exhaustive pass
    rows, idx = re_ranked_rows(monkeypatch, circle(cut - 1), k, cuts=(cut,))
    assert 0 in rows
    assert set(idx[0, :cut]) == set(dense_knn(circle(cut - 1).astype(np.float64), k)[0, :cut])
    rows, _ = re_ranked_rows(monkeypatch, circle(cut + 1), k, cuts=(cut,))
    assert 0 not in rows


def test_pair_similarity_accumulates_in_the_dtype_asked_for():
    """float32 by default (the search's own precision; Jaccard fills in its missing pairs with it),
    float64 on request (the exact re-ranking); across chunks the pairs keep their order."""
    rng = np.random.default_rng(3)
    features = rng.standard_normal((300, 512)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    rows, cols = rng.integers(0, 300, 500), rng.integers(0, 300, 500)
    exact = np.einsum("ij,ij->i", features[rows].astype(np.float64), features[cols].astype(np.float64))
    single = pair_similarity(features, rows, cols, chunk=64)
    double = pair_similarity(features, rows, cols, dtype=np.float64, chunk=64)
    assert single.dtype == double.dtype == np.float64
    np.testing.assert_allclose(double, exact, rtol=0, atol=1e-15)
    assert 1e-9 < np.abs(single - exact).max() < 1e-5  # float32 rounding, not float64's


def near_tied_group(size, seed=0, dim=64):
    """A query (row 0) and ``size`` points at similarity ~0.5 to it whose float64 similarities differ by
    ~1e-8 (so the exact order is defined) while float32 search error, ~1e-7, shuffles them."""
    rng = np.random.default_rng(seed)
    query = rng.normal(size=dim)
    query /= np.linalg.norm(query)
    other = rng.normal(size=dim)
    other -= (other @ query) * query
    other /= np.linalg.norm(other)
    group = 0.5 * query + np.sqrt(0.75) * other + 1e-8 * rng.normal(size=(size, dim))
    return np.concatenate([query[None], group]).astype(np.float32)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_a_tie_that_runs_past_the_search_is_resolved_over_every_point(backend):
    """The 2nd neighbour of the query sits in a near-tied group of 300 (larger than the search and than
    one block of the exhaustive ranking); its 1st is clearly above: the float64 best of the whole group
    is found, and every group row (each tied with all the others) is ranked exactly."""
    x = near_tied_group(300)
    idx, _ = exact_knn(x, 2, backend)
    np.testing.assert_array_equal(idx, dense_knn(x.astype(np.float64), 2))


@pytest.mark.parametrize("cuts", [None, ()])  # no cut inside: no place is checked for ties
def test_k_equal_to_n_ranks_every_point(cuts):
    x = near_tied_group(20, seed=1)
    idx, _ = exact_knn(x, len(x), "faiss", cuts=cuts)
    reference = dense_knn(x.astype(np.float64), len(x))
    if cuts is None:
        np.testing.assert_array_equal(idx, reference)
    else:  # only the set of all k neighbours is guaranteed, and with k = N it is every point
        assert all(sorted(row) == list(range(len(x))) for row in idx)
