"""ReID-like features for clustering tests and benchmarks."""
import numpy as np


def synthetic_reid_features(n: int, dim: int = 2048, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 features of about n / 50 identities: a unit-norm centre per identity plus
    isotropic noise of norm about 1, each image of a random identity (not L2-normalised)."""
    rng = np.random.default_rng(seed)
    ids = max(2, n // 50)
    centres = rng.standard_normal((ids, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    features = rng.standard_normal((n, dim), dtype=np.float32)
    features /= np.sqrt(dim)
    features += centres[rng.integers(0, ids, n)]
    return features
