"""Costs like the ones the matcher meets: 1 − cos between the cluster prototypes of the same
identities seen in two modalities (a noisy permutation of high-dimensional vectors).

Used by the tests and by benchmarks/bench_matching.py.
"""
import numpy as np


def synthetic_prototype_cost(n: int, m: int, dim: int = 2048, noise: float = 1.0, shift: float = 0.5,
                   seed: int = 0) -> np.ndarray:
    """(n, m) float64 cost between n visible and m infrared prototypes of max(n, m) identities.

    Each identity has a random direction; a visible prototype is it plus noise, an infrared one
    it plus a shared modality shift and noise (both L2-normalised), and the infrared side comes
    in a random order. With n != m the smaller side sees a random subset of the identities.
    """
    rng = np.random.default_rng(seed)
    identities = rng.standard_normal((max(n, m), dim))
    modality_shift = shift * rng.standard_normal(dim)

    def prototypes(ids: np.ndarray, offset: np.ndarray) -> np.ndarray:
        x = identities[ids] + offset + noise * rng.standard_normal((len(ids), dim))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    visible = prototypes(rng.permutation(max(n, m))[:n], np.zeros(dim))
    infrared = prototypes(rng.permutation(max(n, m))[:m], modality_shift)
    return 1.0 - visible @ infrared.T
