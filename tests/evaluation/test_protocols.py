"""Random gallery trials: one image per (identity, camera), reproducible per trial."""
import random

import numpy as np

from fastreid_ext.evaluation import sample_random_gallery

G_PIDS = [1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3]
G_CAMS = [1, 1, 2, 4, 1, 2, 2, 5, 5, 5, 1]


def reference(trial, shots=1):
    """The field's gallery code, literally: seed with the trial, ids sorted, cameras sorted."""
    random.seed(trial)
    chosen = []
    for pid in sorted(set(G_PIDS)):
        for cam in sorted(set(G_CAMS)):
            files = [i for i, (p, c) in enumerate(zip(G_PIDS, G_CAMS)) if p == pid and c == cam]
            if files:
                chosen.extend([random.choice(files)] if shots == 1 else random.sample(files, min(shots, len(files))))
    return chosen


def test_one_image_per_identity_and_camera_as_the_reference_code_draws_it():
    for trial in range(10):
        chosen = sample_random_gallery(G_PIDS, G_CAMS, trial)
        assert chosen.tolist() == reference(trial)
        assert len({(G_PIDS[i], G_CAMS[i]) for i in chosen}) == len(chosen) == 7


def test_trials_are_reproducible_and_differ_from_each_other():
    draws = [tuple(sample_random_gallery(G_PIDS, G_CAMS, t)) for t in range(10)]
    assert draws == [tuple(sample_random_gallery(G_PIDS, G_CAMS, t)) for t in range(10)]
    assert len(set(draws)) > 1


def test_multi_shot_keeps_up_to_n_images_per_identity_and_camera():
    chosen = sample_random_gallery(G_PIDS, G_CAMS, trial=0, shots=10)
    assert sorted(chosen.tolist()) == list(range(len(G_PIDS)))
    assert chosen.tolist() == reference(0, shots=10)
    assert np.all(np.sort(sample_random_gallery(G_PIDS, G_CAMS, 0, shots=2)) ==
                  np.sort(reference(0, shots=2)))
