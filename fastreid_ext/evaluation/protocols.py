"""Random gallery trials of the SYSU-MM01 and LLCM protocols."""
import random
from collections import defaultdict
from typing import Sequence

import numpy as np


def sample_random_gallery(g_pids: Sequence[int], g_camids: Sequence[int], trial: int,
                          shots: int = 1) -> np.ndarray:
    """Indices of one trial's gallery: ``shots`` random images per (identity, camera).

    As in the field's evaluation code: identities in sorted order, cameras in sorted order,
    candidates in their given (file-sorted) order, ``random.seed(trial)`` for trial ``trial``;
    single-shot uses ``random.choice``, multi-shot ``random.sample``.
    """
    groups = defaultdict(list)
    for index, (pid, cam) in enumerate(zip(g_pids, g_camids)):
        groups[(int(pid), int(cam))].append(index)
    rng = random.Random(trial)
    chosen = []
    for key in sorted(groups):
        candidates = groups[key]
        if shots == 1:
            chosen.append(rng.choice(candidates))
        else:
            chosen.extend(rng.sample(candidates, min(shots, len(candidates))))
    return np.asarray(chosen, dtype=np.int64)
