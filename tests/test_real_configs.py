"""The real-data MIOT configs, run small: ResNet-50 two-stream at 288x144 from a torchvision
weight file, two data-loader workers, one short epoch on a tiny SynVI in each data set's
layout, then the data set's evaluation. Only batch (4 images per pseudo identity, 8 in all),
iterations, device, data root, weight file and output folder differ from the shipped configs."""
import pytest
import torch
import torchvision
from fastreid.engine.defaults import default_argument_parser

from conftest_helpers import REPO
from fastreid_ext.data.synvi import generate
from fastreid_ext.engine import build_trainer_class, setup

LAYOUTS = {"SYSU-MM01": "sysu", "RegDB": "regdb", "LLCM": "llcm"}


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory):
    """ImageNet-format weights (torchvision's ResNet-50 layout; random values: nothing is downloaded)."""
    path = tmp_path_factory.mktemp("weights") / "resnet50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    return path


@pytest.mark.parametrize("dataset", sorted(LAYOUTS))
def test_real_config_trains_a_short_epoch_and_evaluates(dataset, resnet50_file, tmp_path):
    root = tmp_path / "data"
    generate(str(root), LAYOUTS[dataset], num_ids=6, seed=0, images_per_cam=2, size=(64, 32))
    config = REPO / "configs" / dataset / "miot_R50.yml"
    args = default_argument_parser().parse_args(
        ["--config-file", str(config), "DATASETS.ROOT", str(root), "OUTPUT_DIR", str(tmp_path / "run"),
         "MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN_PATH", str(resnet50_file),
         "SOLVER.IMS_PER_BATCH", "8", "DATALOADER.NUM_INSTANCE", "4", "SOLVER.MAX_EPOCH", "1", "MIOT.ITERS", "1",
         "DATALOADER.NUM_WORKERS", "2",
         "TEST.IMS_PER_BATCH", "32", "MIOT.EXTRACT_BATCH", "32"])
    cfg = setup(args)
    assert (cfg.MODEL.BACKBONE.DEPTH, tuple(cfg.INPUT.SIZE_TRAIN), cfg.MIOT.TWO_STREAM) == ("50x", (288, 144), True)
    assert cfg.TEST.FLIP.ENABLED and cfg.DATALOADER.CAMERA_AWARE and cfg.MIOT.STEM_DEPTH == "conv1"
    trainer = build_trainer_class(cfg)(cfg)
    trainer.resume_or_load(resume=False)
    stem = trainer.model.stem_infrared[0].weight
    torch.testing.assert_close(stem, torch.load(resnet50_file)["conv1.weight"])  # the file's weights are used
    results = trainer.train()  # one dict per test set (both protocol directions)
    assert set(results) == set(cfg.DATASETS.TESTS)
    for scores in results.values():
        assert 0 <= scores["Rank-1"] <= scores["Rank-5"] <= scores["Rank-10"] <= scores["Rank-20"] <= 100
        assert 0 < scores["mINP"] <= 100 and 0 < scores["mAP"] <= 100
    assert (tmp_path / "run" / "model_final.pth").is_file()
