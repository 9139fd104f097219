"""Degenerate clustering, non-finite values, corrupt images and out-of-memory are reported clearly."""
import logging
import types

import numpy as np
import pytest
import torch
from fastreid.config import get_cfg
from fastreid.engine.train_loop import SimpleTrainer
from fastreid.utils.events import EventStorage

import miot
from fastreid_ext import add_ext_config
from conftest_helpers import tiny_miot_model
from fastreid_ext.data import ImageListDataset, ImageReadError, Sample
from fastreid_ext.engine.loop import cluster_each_modality
from miot.hooks import MIOTLoopHook
from miot.pseudo_labels import PseudoLabels
from miot.trainer import MIOTTrainer


def miot_cfg():
    cfg = miot.add_miot_config(add_ext_config(get_cfg()))
    cfg.MIOT.CLUSTER.K1, cfg.MIOT.CLUSTER.K2, cfg.MIOT.CLUSTER.MIN_SAMPLES = 5, 1, 3
    return cfg


def loop_hook(cfg):
    train_set = types.SimpleNamespace(num_visible=10, samples=[], has_diagnostic_ids=False)
    return MIOTLoopHook(cfg, MIOTTrainer.loop_settings(cfg), train_set, types.SimpleNamespace(num_ids=4))


def cluster_modality(features, modality, cfg, **kwargs):
    """The toolkit's clustering with the settings MIOTTrainer takes from ``cfg``."""
    from fastreid_ext.engine.loop import cluster_modality as cluster

    return cluster(features, modality, MIOTTrainer.loop_settings(cfg).cluster, **kwargs)


def test_all_noise_first_epoch_falls_back_to_one_label_per_image(caplog):
    cfg = miot_cfg()
    cfg.MIOT.CLUSTER.EPS = 0.05
    with caplog.at_level(logging.WARNING):
        labels = cluster_modality(torch.eye(12), 1, cfg, num_ids=4)
    assert labels.tolist() == list(range(12))
    assert "no cluster; training on one label per image" in caplog.text


def test_all_noise_later_keeps_the_previous_labels(caplog):
    cfg = miot_cfg()
    cfg.MIOT.CLUSTER.EPS = 0.05
    previous = np.array([0, 0, 1, 1, -1, 1, 0, 0, 1, 1, 0, 1])
    with caplog.at_level(logging.WARNING):
        labels = cluster_modality(torch.eye(12), 1, cfg, num_ids=4, previous_labels=previous)
    assert labels.tolist() == previous.tolist()
    assert "keeping the previous epoch's labels" in caplog.text


def test_the_epoch_policy_passes_the_previous_epochs_labels_to_the_fallback():
    cfg = miot_cfg()
    cfg.MIOT.CLUSTER.EPS = 0.05
    previous = PseudoLabels(0, np.array([0, 0, 1, 1, 1, -1]), np.array([1, 0, 0, 1, 1, 0]),
                            torch.eye(2, 6), torch.eye(2, 6))
    pseudo = cluster_each_modality(torch.eye(12), 6, 1, MIOTTrainer.loop_settings(cfg).cluster, num_ids=4,
                                   previous=previous)
    assert pseudo.labels_visible.tolist() == previous.labels_visible.tolist()
    assert pseudo.labels_infrared.tolist() == previous.labels_infrared.tolist()
    assert pseudo.epoch == 1


def test_one_giant_cluster_and_too_few_clusters_are_logged_and_training_goes_on(caplog):
    cfg = miot_cfg()
    cfg.MIOT.CLUSTER.EPS, cfg.MIOT.CLUSTER.K1 = 0.5, 30  # every point is in everybody's neighbourhood
    features = torch.ones(20, 8) + 1e-3 * torch.randn(20, 8, generator=torch.Generator().manual_seed(0))
    with caplog.at_level(logging.WARNING):
        labels = cluster_modality(features, 0, cfg, num_ids=4)
    assert labels.max() == 0 and (labels == 0).sum() > 10
    assert "fewer than the 4 identities a batch asks for" in caplog.text
    assert "one cluster holds" in caplog.text


def test_out_of_memory_while_clustering_names_the_knobs(monkeypatch):
    import fastreid_ext.engine.loop as loop

    def oom(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(loop, "dbscan_labels", oom)
    with pytest.raises(MemoryError, match=r"lower MIOT.CLUSTER.K1 \(now 5\), set MIOT.CLUSTER.KNN_BACKEND"):
        cluster_modality(torch.randn(10, 4), 0, miot_cfg(), num_ids=4)


def test_out_of_memory_while_extracting_names_the_batch_size(monkeypatch):
    import fastreid_ext.engine.loop as loop

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(loop, "extract_features", oom)
    monkeypatch.setattr(loop, "build_inference_loader", lambda *a, **k: None)
    with pytest.raises(MemoryError, match=r"lower MIOT.EXTRACT_BATCH \(now 128\)"):
        loop_hook(miot_cfg())._extract(torch.nn.Identity())


def tiny_model():
    model = tiny_miot_model()
    model.set_targets(PseudoLabels(0, np.array([0, 1]), np.array([0, 1]), torch.randn(2, 512),
                                   torch.randn(2, 512)))
    batch = {"images": torch.rand(4, 3, 32, 16) * 255, "modalities": torch.tensor([0, 0, 1, 1]),
             "index": torch.arange(4), "img_paths": [f"img{i}.jpg" for i in range(4)]}
    return model, batch


def take_step(model, batch):
    """One training step as MIOTTrainer takes it: fastreid's ``SimpleTrainer.run_step`` (forward,
    backward, optimizer step), then the memories' queued momentum updates (the loop hook's
    ``after_step``), whether or not the step raised."""
    trainer = SimpleTrainer(model, [batch], torch.optim.SGD(model.parameters(), lr=0.1), None)
    try:
        with EventStorage(0):
            trainer.run_step()
    finally:
        model.apply_updates()


def snapshot(model):
    """The weights and both memories (batch-norm running statistics are left out: every forward
    pass in training mode updates them, before any loss exists)."""
    state = {name: p.detach().clone() for name, p in model.named_parameters()}
    state.update(memory_visible=model.memory_visible.features.clone(),
                 memory_infrared=model.memory_infrared.features.clone())
    return state


def assert_unchanged(model, before):
    after = snapshot(model)
    changed = [name for name in before if not torch.allclose(before[name], after[name], rtol=0, atol=0, equal_nan=True)]
    assert changed == []


def test_a_finite_step_changes_the_weights_and_both_memories():  # what the two tests below rule out
    model, batch = tiny_model()
    before = snapshot(model)
    take_step(model, batch)
    after = snapshot(model)
    assert not torch.equal(before["memory_visible"], after["memory_visible"])
    assert not torch.equal(before["memory_infrared"], after["memory_infrared"])
    assert not torch.equal(before["neck.weight"], after["neck.weight"])


def test_nan_embeddings_stop_the_step_and_name_the_images():
    model, batch = tiny_model()
    with torch.no_grad():
        model.neck.weight[0] = float("nan")  # a diverged weight: every embedding is NaN
    before = snapshot(model)
    with pytest.raises(FloatingPointError, match=r"non-finite embeddings for 4 images \(e.g. \['img0.jpg', "
                                                 r"'img1.jpg', 'img2.jpg'\]\)"):
        take_step(model, batch)
    assert_unchanged(model, before)


def test_non_finite_pixels_stop_the_step_before_the_forward_and_name_the_images():
    model, batch = tiny_model()
    batch["images"][2] = float("nan")
    before = snapshot(model)
    with pytest.raises(FloatingPointError, match=r"non-finite pixel values in 1 images \(e.g. \['img2.jpg'\]\)"):
        take_step(model, batch)
    assert_unchanged(model, before)


def test_a_non_finite_loss_term_is_named_and_memories_stay_unchanged():
    model, batch = tiny_model()
    model.memory_visible.features[0] = float("inf")
    before = snapshot(model)
    with pytest.raises(FloatingPointError, match=r"MIOT: loss_intra is nan; the step is not taken"):
        take_step(model, batch)
    assert_unchanged(model, before)


def test_corrupt_training_image_stops_with_its_path_or_is_skipped_by_config(tmp_path, caplog):
    from PIL import Image

    good = tmp_path / "good.jpg"
    Image.new("RGB", (8, 16), (10, 20, 30)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[:50])
    samples = [Sample(str(bad), -1, 1, 0), Sample(str(good), -1, 2, 0)]
    to_tensor = lambda img: torch.from_numpy(np.asarray(img).copy())  # noqa: E731
    with pytest.raises(ImageReadError, match="bad.jpg"):
        ImageListDataset(samples, to_tensor)[0]
    with caplog.at_level(logging.WARNING):
        item = ImageListDataset(samples, to_tensor, on_corrupt="skip")[0]
    assert item["index"] == 1 and item["img_paths"] == str(good)
    assert "skipping a corrupt image" in caplog.text and "bad.jpg" in caplog.text
