"""The sparse Jaccard distance equals the dense reference, pair by pair."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fastreid_ext.cluster import jaccard_distance
from fastreid_ext.testing import dense_jaccard


def reid_like(seed, n=240, ids=15, dim=32, noise=0.8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim))
    return centres[rng.integers(0, ids, n)] + noise * rng.normal(size=(n, dim))


def with_duplicates(seed, distinct=40, dim=16):
    """Exact duplicates (ties everywhere) and near-duplicates."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(distinct, dim))
    copies = np.repeat(base, rng.integers(1, 9, distinct), axis=0)
    near = copies[: len(copies) // 3] + 1e-6 * rng.normal(size=(len(copies) // 3, dim))
    return np.concatenate([copies, near])[rng.permutation(len(copies) + len(near))]


def as_dense(graph: sp.csr_matrix) -> np.ndarray:
    out = np.ones(graph.shape)
    coo = graph.tocoo()
    out[coo.row, coo.col] = coo.data
    return out


FEATURE_SETS = {
    "separated": lambda: reid_like(0, noise=0.3),
    "noisy": lambda: reid_like(1, noise=1.5),
    "duplicates": lambda: with_duplicates(2),
    "tiny (N <= k1)": lambda: reid_like(3, n=12, ids=3),
}

# (1, 6): one neighbour, so k1/2 and the query expansion use one too; (2, 2): the smallest expansion
K_SETTINGS = [(20, 6), (30, 1), (7, 3), (1, 6), (2, 2)]


@pytest.mark.parametrize("name", FEATURE_SETS)
@pytest.mark.parametrize("k1,k2", K_SETTINGS)
def test_every_pair_matches_the_dense_reference(name, k1, k2):
    features = FEATURE_SETS[name]()
    ours = jaccard_distance(features, k1=k1, k2=k2, knn_backend="faiss")
    np.testing.assert_allclose(as_dense(ours), dense_jaccard(features, k1, k2), atol=1e-6)


@pytest.mark.parametrize("backend", ["scipy", "torch"])
def test_only_pairs_below_max_distance_are_stored(backend):
    features = reid_like(4, noise=1.0)
    full, reference = jaccard_distance(features, k1=20, k2=6, backend=backend), dense_jaccard(features, 20, 6)
    cut = jaccard_distance(features, k1=20, k2=6, max_distance=0.5, backend=backend)
    assert cut.nnz == int((reference < 0.5).sum()) < full.nnz
    assert np.all(cut.data < 0.5)
    assert np.all(cut.diagonal() < 1e-6)  # the diagonal is stored, as explicit zeros
    # strictly below: a limit equal to a stored distance leaves that pair out
    stored = np.sort(full.data[full.data > 0])
    limit = float(stored[len(stored) // 2])
    at_limit = jaccard_distance(features, k1=20, k2=6, max_distance=limit, backend=backend)
    assert at_limit.nnz == int((full.data < limit).sum()) and not np.any(at_limit.data >= limit)


def test_torch_backend_and_every_input_dtype_agree():
    features = reid_like(5)
    reference = as_dense(jaccard_distance(features, k1=20, k2=6, knn_backend="faiss"))
    for variant in (features.astype(np.float32), torch.from_numpy(features.astype(np.float32))):
        np.testing.assert_allclose(as_dense(jaccard_distance(variant, 20, 6, knn_backend="torch")), reference, atol=1e-6)
    half = features.astype(np.float16)
    np.testing.assert_allclose(as_dense(jaccard_distance(half, 20, 6)), dense_jaccard(half.astype(np.float64), 20, 6),
                               atol=1e-6)


def test_block_size_does_not_change_the_result():
    features = reid_like(6)
    a = jaccard_distance(features, 20, 6, block=7)
    b = jaccard_distance(features, 20, 6, block=1000)
    assert (a != b).nnz == 0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"non-empty \(N, D\) array"):
        jaccard_distance(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="^features contain NaN or inf$"):
        jaccard_distance(np.full((5, 4), np.nan))
    with pytest.raises(ValueError, match="k1 and k2 must be >= 1"):
        jaccard_distance(np.ones((5, 4)), k1=0)


@pytest.mark.parametrize("name", FEATURE_SETS)
@pytest.mark.parametrize("k1,k2", K_SETTINGS)
def test_the_torch_path_matches_the_dense_reference_pair_by_pair(name, k1, k2):
    features = FEATURE_SETS[name]()
    ours = jaccard_distance(features, k1=k1, k2=k2, knn_backend="faiss", backend="torch")
    np.testing.assert_allclose(as_dense(ours), dense_jaccard(features, k1, k2), atol=1e-6)


def test_the_torch_path_stores_the_pairs_of_the_scipy_path():
    features = reid_like(7, noise=1.0)
    scipy_path = jaccard_distance(features, 20, 6, max_distance=0.7, backend="scipy")
    torch_path = jaccard_distance(features, 20, 6, max_distance=0.7, backend="torch")
    assert torch_path.nnz == scipy_path.nnz and (abs(torch_path - scipy_path) > 1e-7).nnz == 0
    np.testing.assert_array_equal(torch_path.indices, scipy_path.indices)


def test_auto_backend_is_torch_for_cuda_tensors_only():
    from fastreid_ext.cluster.jaccard import resolve_jaccard_backend

    assert resolve_jaccard_backend("auto", np.zeros((2, 2))) == "scipy"
    assert resolve_jaccard_backend("auto", torch.zeros(2, 2)) == "scipy"
    if torch.cuda.is_available():
        assert resolve_jaccard_backend("auto", torch.zeros(2, 2, device="cuda")) == "torch"
    with pytest.raises(ValueError, match="jaccard backend must be one of"):
        jaccard_distance(np.ones((5, 4)), backend="cupy")


@pytest.mark.parametrize("name", FEATURE_SETS)
def test_the_torch_paths_chunks_and_blocks_do_not_change_the_result(name, monkeypatch):
    """Rows in chunks of 7, gathers of one row, final-pass blocks of 16 rows: still the dense reference."""
    from fastreid_ext.cluster import jaccard_torch

    monkeypatch.setattr(jaccard_torch, "ROW_CHUNK", 7)
    monkeypatch.setattr(jaccard_torch, "GATHER_ELEMENTS", 1)
    monkeypatch.setattr(jaccard_torch, "BLOCK_ELEMENTS", {"cpu": 16, "cuda": 16})
    features = FEATURE_SETS[name]()
    ours = jaccard_distance(features, k1=20, k2=6, knn_backend="faiss", backend="torch")
    np.testing.assert_allclose(as_dense(ours), dense_jaccard(features, 20, 6), atol=1e-6)


def test_the_torch_path_skips_blocks_of_empty_rows_and_keeps_the_later_ones(monkeypatch):
    """Groups of 60 duplicates with k1 = 20: rows 20..59 of each group have no encoding, so whole 16-row
    blocks of the final pass are empty; the blocks after them still count."""
    from fastreid_ext.cluster import jaccard_torch

    monkeypatch.setattr(jaccard_torch, "BLOCK_ELEMENTS", {"cpu": 16, "cuda": 16})
    features = np.repeat(np.eye(3), 60, axis=0)
    ours = jaccard_distance(features, k1=20, k2=1, knn_backend="faiss", backend="torch")
    np.testing.assert_allclose(as_dense(ours), dense_jaccard(features, 20, 1), atol=1e-6)


@pytest.mark.parametrize("backend", ["scipy", "torch"])
def test_a_limit_of_zero_stores_nothing(backend):
    empty = jaccard_distance(reid_like(6, n=40), k1=10, k2=3, max_distance=0.0, backend=backend)
    assert empty.shape == (40, 40) and empty.nnz == 0 and empty.dtype == np.float64


def test_the_torch_final_pass_on_hand_made_encodings():
    """d_J = 1 - sum min / (2 - sum min) over the shared columns, as (row, col, distance) with long
    indices; a block whose one entry pairs a row with itself is kept; no entry at all gives three
    empty tensors (long, long, float64)."""
    from fastreid_ext.cluster.jaccard_torch import _min_overlap_distances

    rows, cols = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 2])
    vals = torch.tensor([0.5, 0.5, 1.0, 1.0], dtype=torch.float64)
    r, c, d = _min_overlap_distances(rows, cols, vals, 3, max_distance=1.0)
    assert r.dtype == c.dtype == torch.long and d.dtype == torch.float64
    got = {(int(i), int(j)): float(v) for i, j, v in zip(r, c, d)}
    # rows 0 and 1 share column 1 with min 0.5: 1 - 0.5 / 1.5; every row with itself: 0
    assert got == pytest.approx({(0, 0): 0.0, (0, 1): 2 / 3, (1, 0): 2 / 3, (1, 1): 0.0, (2, 2): 0.0})
    single = _min_overlap_distances(torch.tensor([0]), torch.tensor([0]), torch.tensor([1.0], dtype=torch.float64),
                                    1, max_distance=0.5)
    assert [t.tolist() for t in single] == [[0], [0], [0.0]]
    nothing = _min_overlap_distances(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                                     torch.zeros(0, dtype=torch.float64), 4, max_distance=0.5)
    assert [(t.shape, t.dtype) for t in nothing] == [((0,), torch.long), ((0,), torch.long), ((0,), torch.float64)]


def test_rows_are_normalised_in_float64_and_stored_in_float32():
    """Any norm (also below 1) becomes 1; an all-zero row stays zero; chunks keep the row order."""
    from fastreid_ext.cluster.jaccard import _normalised_float32

    x = np.concatenate([reid_like(7, n=50), np.zeros((1, 32)), 1e-3 * reid_like(8, n=9)])
    out = _normalised_float32(x, chunk=16)
    assert out.dtype == np.float32 and out.shape == x.shape
    expected = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    assert not out[50].any()


def test_the_documented_defaults_are_used():
    """k1 30, k2 6 (ClusterContrast's) and no distance limit (max_distance 1.0) when left out."""
    features = reid_like(9, n=120)
    given = jaccard_distance(features, k1=30, k2=6, max_distance=1.0)
    assert (jaccard_distance(features) != given).nnz == 0
    for other in ({"k1": 31}, {"k2": 7}, {"max_distance": 0.9}):
        assert (jaccard_distance(features, **{"k1": 30, "k2": 6, "max_distance": 1.0, **other}) != given).nnz > 0


def test_the_torch_backend_runs_the_torch_path(monkeypatch):
    from fastreid_ext.cluster import jaccard

    calls = []
    original = jaccard.jaccard_distance_torch
    monkeypatch.setattr(jaccard, "jaccard_distance_torch", lambda *a, **kw: calls.append(1) or original(*a, **kw))
    jaccard_distance(reid_like(10, n=60), k1=10, backend="scipy")
    assert calls == []
    jaccard_distance(reid_like(10, n=60), k1=10, backend="torch")
    assert calls == [1]


@pytest.mark.parametrize("n,terminal,shown", [(40, True, True), (39, True, False), (40, False, False)])
def test_the_progress_bar_is_on_by_default_for_large_inputs_on_a_terminal(n, terminal, shown, monkeypatch, capsys):
    import sys
    import threading

    from tqdm import tqdm

    from fastreid_ext.cluster import jaccard

    monkeypatch.setattr(tqdm, "_lock", threading.RLock(), raising=False)  # see test_dbscan's progress test
    monkeypatch.setattr(tqdm, "monitor_interval", 0)
    monkeypatch.setattr(jaccard, "PROGRESS_FROM", 40)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    jaccard_distance(reid_like(11, n=n), k1=10)
    assert ("jaccard: 100%|" in capsys.readouterr().err) == shown
