"""The MIOT loop on a tiny SynVI: extract, cluster, match, relabel, train, evaluate, resume."""
import json
import shutil

import pytest
import torch

from conftest_helpers import make_trainer


@pytest.fixture(scope="module")
def two_epochs(tiny_miot_run):
    return tiny_miot_run


def loop_hook(trainer):
    return next(h for h in trainer._hooks if type(h).__name__ == "MIOTLoopHook")


def test_warm_up_epoch_trains_intra_only_then_the_cross_terms_join(two_epochs):
    _, recorder, _, _ = two_epochs
    assert recorder.per_epoch[0] == {"total_loss"}  # fastreid logs a lone loss as total_loss only
    assert recorder.per_epoch[1] == {"total_loss", "loss_intra", "loss_cross", "loss_cpal"}


def test_loop_relabels_both_modalities_and_resets_the_memories(two_epochs):
    trainer, _, _, _ = two_epochs
    hook, model = loop_hook(trainer), trainer.model
    train_set = trainer.data_loader.dataset
    pseudo = hook.current
    labels_v, labels_r = torch.as_tensor(pseudo.labels_visible), torch.as_tensor(pseudo.labels_infrared)
    assert len(labels_v) == train_set.num_visible and len(labels_r) == len(train_set.samples) - train_set.num_visible
    assert model.memory_visible.num_prototypes == int(labels_v.max()) + 1 == len(pseudo.prototypes_visible)
    assert model.memory_infrared.num_prototypes == int(labels_r.max()) + 1 == len(pseudo.prototypes_infrared)
    assert torch.equal(model.pseudo_labels.cpu(), torch.cat([labels_v, labels_r]))
    assert torch.equal(model.infrared_to_visible.cpu(), pseudo.matches.b_to_a)
    # the sampler draws from the current clusters: P ids x K from each modality
    batch = next(iter(trainer.data_loader.batch_sampler))
    assert len(batch) == 16 and all(i < train_set.num_visible for i in batch[:8])
    assert all(i >= train_set.num_visible for i in batch[8:])


def test_the_saved_loop_state_is_the_epochs_start_not_a_view_of_the_trained_memories(two_epochs):
    trainer, _, _, run = two_epochs
    saved = torch.load(run / "model_final.pth", map_location="cpu", weights_only=False)["miot"]
    pseudo = loop_hook(trainer).current
    torch.testing.assert_close(saved["prototypes_visible"], pseudo.prototypes_visible, rtol=0, atol=0)
    # three steps of momentum updates moved the live memory away from the epoch's prototypes
    assert not torch.allclose(trainer.model.memory_visible.features.cpu(), saved["prototypes_visible"])


def test_trainer_evaluates_with_the_cross_modality_protocol_and_logs_loop_metrics(two_epochs):
    _, _, results, out = two_epochs
    assert {"Rank-1", "Rank-5", "Rank-10", "Rank-20", "mAP", "mINP", "Rank-1_std"} <= set(results)
    assert results["Rank-1"] <= results["Rank-5"] <= results["Rank-10"] <= results["Rank-20"] <= 100
    lines = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    keys = set().union(*lines)
    assert {"clusters_visible", "clusters_infrared", "outliers_visible", "purity_visible", "purity_infrared",
            "identity_alignment", "matched_infrared", "match_confidence", "matching_accuracy", "loss_intra",
            "matcher_iterations", "matcher_marginal_error", "time_extract", "time_knn", "time_jaccard",
            "time_dbscan", "time_match"} <= keys
    timed = [line for line in lines if "time_extract" in line]
    assert len(timed) == 2 and all(line[f"time_{p}"] > 0 for line in timed for p in ("extract", "knn", "dbscan"))
    final = [line for line in lines if "Rank-1" in line][-1]
    assert final["Rank-1"] == pytest.approx(results["Rank-1"]) and final["mAP"] == pytest.approx(results["mAP"])
    matching = [line for line in lines if "matcher_iterations" in line]
    assert all(line["matcher_marginal_error"] < 1e-6 for line in matching)


def test_resume_applies_the_saved_pseudo_labels_again(two_epochs, synvi_sysu, tmp_path):
    trainer, _, _, run = two_epochs
    out = tmp_path / "run"
    shutil.copytree(run, out)
    saved = torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)
    assert saved["epoch"] == 1 and saved["miot"]["epoch"].item() == 1
    resumed = make_trainer(synvi_sysu, out, "SOLVER.MAX_EPOCH", "3", resume=True)
    assert resumed.start_epoch == 2
    hook, state = loop_hook(resumed), saved["miot"]
    assert hook.state_dict().keys() == state.keys()
    for key, value in hook.state_dict().items():
        assert torch.equal(value, state[key]), key
    torch.testing.assert_close(resumed.model.memory_visible.features.cpu(), state["prototypes_visible"])
    torch.testing.assert_close(resumed.model.memory_infrared.features.cpu(), state["prototypes_infrared"])
    assert torch.equal(resumed.model.pseudo_labels.cpu(), torch.cat([state["labels_visible"], state["labels_infrared"]]))
    assert torch.equal(resumed.model.infrared_to_visible.cpu(), state["matches.b_to_a"])
    resumed.train()  # and it trains on
    assert loop_hook(resumed).current.epoch == 2


def test_nan_mid_run_stops_training_and_leaves_the_last_checkpoint_intact(two_epochs, synvi_sysu, tmp_path):
    _, _, _, out = two_epochs
    run = tmp_path / "run"
    shutil.copytree(out, run)
    before = (run / "model_final.pth").read_bytes()
    resumed = make_trainer(synvi_sysu, run, "SOLVER.MAX_EPOCH", "4", resume=True)
    with torch.no_grad():
        next(resumed.model.parameters()).fill_(float("nan"))  # corrupt the weights: every embedding is NaN
    with pytest.raises(FloatingPointError, match="non-finite features .* before clustering"):
        resumed.train()
    assert (run / "model_final.pth").read_bytes() == before
    assert (run / "last_checkpoint").read_text().strip() == "model_final.pth"


def test_with_data_loader_workers_every_batch_follows_its_epochs_labels(synvi_sysu, tmp_path):
    trainer = make_trainer(synvi_sysu, tmp_path, "DATALOADER.NUM_WORKERS", "2", "SOLVER.MAX_EPOCH", "4",
                           "MIOT.ITERS", "8", "TEST.EVAL_PERIOD", "100", "SEED", "0", "MIOT.CLUSTER.EPS", "0.5")
    blocks = []  # per training batch: the current labels of each K-image block

    def record(module, args):
        if module.training:
            labels = module.pseudo_labels[args[0]["index"]].tolist()
            blocks.append([labels[i:i + 4] for i in range(0, len(labels), 4)])

    trainer.model.register_forward_pre_hook(record)
    trainer.train()
    assert len(blocks) == 32
    stale = [b for b in blocks if any(len(set(block)) != 1 or block[0] < 0 for block in b)]
    assert stale == []  # each block: K images of one current cluster, never an outlier


def test_the_unsupervised_training_set_carries_no_identity(two_epochs):
    trainer, _, _, _ = two_epochs
    train_set = trainer.data_loader.dataset
    assert all(s.pid == -1 for s in train_set.samples) and set(train_set.labels) == {-1}
    item = train_set[0]
    assert item["targets"] == -1  # what a batch hands the model: no identity
