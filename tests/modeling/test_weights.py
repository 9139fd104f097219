"""MODEL.BACKBONE.PRETRAIN_PATH: torchvision and fastreid weight files reach every backbone weight;
what does not fit is an error, unless partial loading is asked for."""
import pytest
import torch
import torchvision
from fastreid.config import get_cfg
from fastreid.modeling import build_model
from fastreid.modeling.backbones import build_backbone

from conftest_helpers import tiny_miot_model
from fastreid_ext import add_ext_config


def resnet18_cfg(path="", partial=False):
    cfg = add_ext_config(get_cfg())
    backbone = cfg.MODEL.BACKBONE
    backbone.NAME, backbone.DEPTH, backbone.FEAT_DIM, backbone.LAST_STRIDE = "build_resnet_backbone", "18x", 512, 1
    backbone.PRETRAIN, backbone.PRETRAIN_PATH, backbone.PRETRAIN_PARTIAL = bool(path), str(path), partial
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def assert_all_equal(backbone_state, expected):
    weights = [k for k in backbone_state if not k.endswith("num_batches_tracked")]
    assert weights and all(torch.equal(backbone_state[k], expected[k]) for k in weights), \
        [k for k in weights if not torch.equal(backbone_state[k], expected[k])][:5]


def test_torchvision_imagenet_weights_reach_every_backbone_weight(tmp_path):
    path = tmp_path / "resnet18.pth"
    reference = torchvision.models.resnet18().state_dict()
    torch.save(reference, path)
    assert_all_equal(build_backbone(resnet18_cfg(path)).state_dict(), reference)


def test_a_fastreid_checkpoint_gives_its_backbone_and_drops_its_heads(tmp_path):
    cfg = resnet18_cfg()
    cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.HEADS.NUM_CLASSES = "Baseline", 10
    baseline = build_model(cfg)
    path = tmp_path / "model_final.pth"
    torch.save({"model": baseline.state_dict(), "iteration": 7}, path)
    loaded = build_backbone(resnet18_cfg(path)).state_dict()
    assert_all_equal(loaded, {k[len("backbone."):]: v for k, v in baseline.state_dict().items()
                              if k.startswith("backbone.")})


def test_a_miot_checkpoint_initialises_both_stems_of_a_two_stream_model(tmp_path):
    trained = tiny_miot_model(two_stream=True)
    with torch.no_grad():
        for p in trained.stem_infrared.parameters():
            p.add_(1.0)  # the checkpoint's own infrared stem differs from its visible one
    path = tmp_path / "miot.pth"
    torch.save({"model": trained.state_dict()}, path)
    fresh = tiny_miot_model(two_stream=True, pretrain_path=str(path))
    assert_all_equal(fresh.backbone.state_dict(), trained.backbone.state_dict())
    torch.testing.assert_close(fresh.stem_infrared[0].weight, trained.backbone.conv1.weight, rtol=0, atol=0)
    torch.testing.assert_close(fresh.stem_infrared[1].weight, trained.backbone.bn1.weight, rtol=0, atol=0)


def test_a_supervised_agw_model_starts_miot_once_its_non_local_blocks_are_dropped_on_purpose(tmp_path):
    cfg = resnet18_cfg()  # the README's chain: supervised AGW (ResNet-50, non-local blocks) -> MIOT
    cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.HEADS.NUM_CLASSES = "Baseline", 10
    cfg.MODEL.BACKBONE.DEPTH, cfg.MODEL.BACKBONE.FEAT_DIM, cfg.MODEL.BACKBONE.WITH_NL = "50x", 2048, True
    agw = build_model(cfg)
    path = tmp_path / "agw.pth"
    torch.save({"model": agw.state_dict()}, path)
    with pytest.raises(ValueError, match=r"has no place for: \['NL_2.0.*MODEL.BACKBONE.PRETRAIN_PARTIAL True"):
        tiny_miot_model(two_stream=True, pretrain_path=str(path), depth="50x")
    miot = tiny_miot_model(two_stream=True, pretrain_path=str(path), partial=True, depth="50x")
    assert_all_equal(miot.backbone.state_dict(), {k[len("backbone."):]: v for k, v in agw.state_dict().items()
                                                  if k.startswith("backbone.")})
    torch.testing.assert_close(miot.stem_infrared[0].weight, agw.backbone.conv1.weight, rtol=0, atol=0)


def test_missing_backbone_weights_are_an_error_listing_them_unless_partial_loading_is_asked(tmp_path):
    path = tmp_path / "no_layer4.pth"
    reference = {k: v for k, v in torchvision.models.resnet18().state_dict().items() if not k.startswith("layer4")}
    torch.save(reference, path)
    with pytest.raises(ValueError, match=r"backbone weights missing from the file: \['layer4.0.conv1.weight'.*"
                                         r"MODEL.BACKBONE.PRETRAIN_PARTIAL True"):
        build_backbone(resnet18_cfg(path))
    partial = build_backbone(resnet18_cfg(path, partial=True)).state_dict()
    assert_all_equal({k: v for k, v in partial.items() if not k.startswith("layer4")}, reference)


def test_weights_of_another_depth_and_a_checkpoint_without_a_backbone_are_refused(tmp_path):
    wrong = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), wrong)
    with pytest.raises(ValueError, match="weights of the file the backbone has no place for"):
        build_backbone(resnet18_cfg(wrong))
    headless = tmp_path / "heads_only.pth"
    torch.save({"model": {"heads.weight": torch.zeros(2)}}, headless)
    with pytest.raises(ValueError, match="fastreid checkpoint without 'backbone.' weights"):
        build_backbone(resnet18_cfg(headless))
