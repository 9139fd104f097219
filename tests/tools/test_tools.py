"""Tools around training: curves, rank grids, feature export, reproducibility, resume."""
import numpy as np
import pytest
import torch
from fastreid.engine import HookBase
from PIL import Image

from conftest_helpers import REPO, load_tool, make_trainer


def tool_config(root):
    return ["--config-file", str(REPO / "configs" / "SynVI" / "miot.yml")], ["DATASETS.ROOT", str(root)]


def test_plot_training_draws_the_per_epoch_curves(tiny_miot_run, tmp_path):
    plot_training = load_tool("plot_training")
    _, _, _, out = tiny_miot_run
    series = plot_training.read_series(str(out / "metrics.json"))
    assert [it for it, _ in series["clusters_visible"]] == [0, 3]  # one point per epoch
    assert len(series["Rank-1"]) == 1
    path = plot_training.plot(str(out), str(tmp_path / "curves.png"))
    with Image.open(path) as image:
        assert image.size == (800, 5 * 260)  # five panels: losses, clusters, matching, quality, evaluation
        assert len(set(image.convert("L").getdata())) > 10  # something is drawn


def test_visualize_ranks_writes_grids_of_the_expected_size(tiny_miot_run, synvi_sysu, tmp_path):
    main = load_tool("visualize_ranks").main
    _, _, _, out = tiny_miot_run
    config, opts = tool_config(synvi_sysu)
    for select in ("worst", "random"):
        main(config + ["--output", str(tmp_path), "--select", select, "--num", "3", "--topk", "5",
                               "--reverse", "--opts", *opts, "MODEL.WEIGHTS", str(out / "model_final.pth")])
    grids = sorted(tmp_path.glob("*.png"))
    assert [p.name for p in grids] == ["SYSUMM01_gallery2query_random.png", "SYSUMM01_gallery2query_worst.png",
                                       "SYSUMM01_query2gallery_random.png", "SYSUMM01_query2gallery_worst.png"]
    with Image.open(grids[-1]) as image:
        assert image.size == (64 * 6 + 8, 128 * 3)
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
        red = np.sum((pixels[:, 0] > 200) & (pixels[:, 1] < 80))
        green = np.sum((pixels[:, 1] > 100) & (pixels[:, 0] < 80) & (pixels[:, 2] < 80))
        assert red + green > 0  # frames are drawn


def test_extract_features_round_trips(tiny_miot_run, synvi_sysu, tmp_path):
    from fastreid_ext.data import Sample, build_inference_loader
    from fastreid_ext.engine import extract_features

    main = load_tool("extract_features").main
    trainer, _, _, out = tiny_miot_run
    images = synvi_sysu / "SYSU-MM01" / "cam3"
    config, opts = tool_config(synvi_sysu)
    main(config + ["--images", str(images), "--modality", "infrared", "--output", str(tmp_path),
                   *opts, "MODEL.WEIGHTS", str(out / "model_final.pth")])
    features = np.load(tmp_path / "features.npy")
    index = (tmp_path / "index.txt").read_text().split()
    assert features.shape == (len(index), 512) and index == sorted(index)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    samples = [Sample(str(images / p), -1, 3, 1) for p in index[:5]]
    direct = extract_features(trainer.model, build_inference_loader(trainer.cfg, samples, num_workers=0), flip=False)
    np.testing.assert_allclose(features[:5], direct.numpy(), atol=1e-5)


def test_two_runs_with_the_same_seed_give_the_same_metrics(tiny_miot_run, synvi_sysu, tmp_path):
    _, _, results, _ = tiny_miot_run
    again = make_trainer(synvi_sysu, tmp_path, "SOLVER.MAX_EPOCH", "2", "TEST.EVAL_PERIOD", "2", "SEED", "0")
    assert again.train() == pytest.approx(results)


class Interrupt(HookBase):
    def before_epoch(self):
        if self.trainer.epoch == 1:
            raise KeyboardInterrupt("simulated interruption after epoch 0's checkpoint")


def test_resume_after_an_interrupted_epoch_reaches_the_same_labels(tiny_miot_run, synvi_sysu, tmp_path):
    trainer, _, _, _ = tiny_miot_run
    uninterrupted = next(h for h in trainer._hooks if type(h).__name__ == "MIOTLoopHook").current  # epoch 1's
    interrupted = make_trainer(synvi_sysu, tmp_path, "SOLVER.MAX_EPOCH", "2", "TEST.EVAL_PERIOD", "2", "SEED", "0")
    interrupted.register_hooks([Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    resumed = make_trainer(synvi_sysu, tmp_path, "SOLVER.MAX_EPOCH", "2", "TEST.EVAL_PERIOD", "2", "SEED", "0",
                           resume=True)
    assert resumed.start_epoch == 1
    resumed.train()
    again = next(h for h in resumed._hooks if type(h).__name__ == "MIOTLoopHook").current
    assert again.epoch == uninterrupted.epoch == 1
    np.testing.assert_array_equal(again.labels_visible, uninterrupted.labels_visible)
    np.testing.assert_array_equal(again.labels_infrared, uninterrupted.labels_infrared)
    assert torch.equal(again.matches.b_to_a, uninterrupted.matches.b_to_a)
