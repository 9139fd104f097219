"""Two-modality identity sampler: P labels x K images from each modality, outliers never drawn."""
import pytest

from fastreid_ext.data import CrossModalityIdentitySampler


def test_each_batch_has_p_identities_times_k_images_from_each_modality():
    labels_v = [0, 0, 0, 1, 1, -1, 2, 2, 2, 2]
    labels_r = [5, 5, 6, 6, 6, -1, 7]
    sampler = CrossModalityIdentitySampler(labels_v, labels_r, num_ids=2, num_instances=3, seed=0)
    for _, batch in zip(range(20), sampler):
        visible, infrared = batch[:6], batch[6:]
        assert len(batch) == sampler.batch_size == 12
        assert all(i < 10 for i in visible) and all(i >= 10 for i in infrared)
        v_labels = [labels_v[i] for i in visible]
        r_labels = [labels_r[i - 10] for i in infrared]
        assert -1 not in v_labels and -1 not in r_labels
        for labels in (v_labels, r_labels):  # K consecutive images of one label, P different labels
            groups = [labels[j:j + 3] for j in range(0, 6, 3)]
            assert all(len(set(g)) == 1 for g in groups) and groups[0][0] != groups[1][0]


def test_same_seed_same_batches_and_few_identities_repeat():
    make = lambda seed: CrossModalityIdentitySampler([0, 0, 1], [3, 3], num_ids=4, num_instances=2, seed=seed)  # noqa: E731
    first = [b for _, b in zip(range(5), make(1))]
    assert first == [b for _, b in zip(range(5), make(1))]
    assert first != [b for _, b in zip(range(5), make(2))]
    assert len(first[0]) == 16  # 4 identities asked, 2 (visible) and 1 (infrared) exist: they repeat


def test_a_modality_without_labels_is_refused():
    with pytest.raises(ValueError, match="no labelled infrared sample"):
        CrossModalityIdentitySampler([0, 1], [-1, -1], num_ids=1, num_instances=1)
    with pytest.raises(ValueError, match="num_ids and num_instances must be >= 1"):
        CrossModalityIdentitySampler([0], [0], num_ids=0, num_instances=1)


def test_new_labels_take_effect_for_the_next_batches():
    sampler = CrossModalityIdentitySampler([0, 0, 1, 1], [0, 0], num_ids=1, num_instances=2, seed=0)
    sampler.set_labels([-1, -1, 1, 1], [0, -1])  # only images 2, 3 (visible) and 4 (infrared) keep a label
    for _, batch in zip(range(10), sampler):
        assert set(batch[:2]) <= {2, 3} and batch[2:] == [4, 4]
    with pytest.raises(ValueError, match="no labelled visible sample"):
        sampler.set_labels([-1, -1, -1, -1], [0, 0])


def test_camera_aware_batches_take_an_identitys_k_images_from_as_many_cameras_as_it_has():
    labels_v = [0] * 6 + [1] * 4
    cameras_v = [1, 1, 1, 1, 2, 3] + [4, 4, 4, 4]  # identity 0: 3 cameras; identity 1: one
    labels_r = [5, 5]
    sampler = CrossModalityIdentitySampler(labels_v, labels_r, num_ids=2, num_instances=3, seed=0,
                                           cameras=cameras_v + [6, 6])
    plain = CrossModalityIdentitySampler(labels_v, labels_r, num_ids=2, num_instances=3, seed=0)
    aware_spread, plain_spread = [], []
    for (_, batch), (_, other) in zip(zip(range(50), sampler), zip(range(50), plain)):
        for b, spread in ((batch, aware_spread), (other, plain_spread)):
            for block in (b[0:3], b[3:6]):
                if labels_v[block[0]] == 0:
                    spread.append(len({cameras_v[i] for i in block}))
    assert set(aware_spread) == {3}  # every camera of identity 0, every time
    assert min(plain_spread) < 3  # without it, a block often repeats a camera


def test_shared_identity_batches_hold_the_same_labels_in_both_modalities():
    labels_v, labels_r = [0, 0, 1, 1, 2, 2, 3], [1, 1, 2, 3, 3, 4]
    sampler = CrossModalityIdentitySampler(labels_v, labels_r, num_ids=2, num_instances=2, seed=0, shared_ids=True)
    for _, batch in zip(range(30), sampler):
        visible = [labels_v[i] for i in batch[:4]]
        infrared = [labels_r[i - len(labels_v)] for i in batch[4:]]
        assert visible == infrared and set(visible) <= {1, 2, 3}  # only labels seen in both modalities
    with pytest.raises(ValueError, match="no label has samples in both modalities"):
        CrossModalityIdentitySampler([0, 0], [1, 1], num_ids=1, num_instances=1, shared_ids=True)


@pytest.mark.parametrize("shared_ids", [False, True])
def test_w_processes_take_slices_of_the_one_process_batch_with_the_same_seeds(shared_ids):
    labels_v, labels_r = [0, 0, 1, 1, 2, 2, 3, 3], [0, 1, 1, 2, 2, 3, 3, 3]
    make = lambda rank, world: CrossModalityIdentitySampler(  # noqa: E731
        labels_v, labels_r, num_ids=4, num_instances=2, seed=5, shared_ids=shared_ids, rank=rank, world_size=world)
    single = [b for _, b in zip(range(6), make(0, 1))]
    ranks = [[b for _, b in zip(range(6), make(rank, 2))] for rank in (0, 1)]
    for step, batch in enumerate(single):
        halves = [ranks[rank][step] for rank in (0, 1)]
        assert len(halves[0]) == len(halves[1]) == make(0, 2).batch_size == 8
        # each rank: its 2 identities x 2 images of the visible part, then of the infrared part
        assert halves[0][:4] + halves[1][:4] + halves[0][4:] + halves[1][4:] == batch
        seeds = lambda b: [i.seed for i in b]  # noqa: E731
        assert seeds(halves[0][:4] + halves[1][:4] + halves[0][4:] + halves[1][4:]) == seeds(batch)
    assert len({i.seed for b in single for i in b}) == 6 * 16  # a seed per place and batch


def test_the_global_batch_must_split_over_the_processes():
    with pytest.raises(ValueError, match=r"num_ids \(3\) must split evenly over world_size \(2\)"):
        CrossModalityIdentitySampler([0], [0], num_ids=3, num_instances=1, rank=0, world_size=2)


def test_seeded_indices_reach_loader_workers_with_their_seeds():
    import pickle

    from fastreid_ext.data import SeededIndex

    index = pickle.loads(pickle.dumps(SeededIndex(7, 2 ** 62 + 3)))
    assert (index, index.seed, index + 1) == (7, 2 ** 62 + 3, 8)
