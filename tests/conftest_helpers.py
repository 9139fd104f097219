"""Helpers shared by test modules (importable: tests/ is on sys.path through conftest)."""
import importlib.util
from pathlib import Path

from fastreid.engine import HookBase

REPO = Path(__file__).resolve().parents[1]

# a MIOT run small enough for seconds on a CPU
TINY = ["MIOT.ITERS", "3", "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4",
        "MIOT.CLUSTER.K1", "5", "MIOT.CLUSTER.MIN_SAMPLES", "2", "MIOT.EXTRACT_BATCH", "64",
        "MIOT.WARMUP_RATIO", "0.5", "TEST.CROSS_MODALITY.NUM_TRIALS", "2", "TEST.IMS_PER_BATCH", "64",
        "SOLVER.STEPS", "[100]", "SOLVER.CHECKPOINT_PERIOD", "1"]


def load_tool(name: str):
    """The script ``tools/<name>.py`` as a module, to call its functions (tools are scripts, not
    packages; nothing else imports them)."""
    spec = importlib.util.spec_from_file_location(f"tools_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_trainer(root, out, *opts, resume=False):
    """A MIOTTrainer on the SynVI config with TINY sizes, built as tools/train_net.py does."""
    from fastreid_ext.engine import build_trainer

    return build_trainer(str(REPO / "configs" / "SynVI" / "miot.yml"),
                         ["DATASETS.ROOT", str(root), "OUTPUT_DIR", str(out), *TINY, *opts], resume=resume)


class LossRecorder(HookBase):
    """Records which loss terms each epoch logged."""

    def __init__(self):
        self.per_epoch = {}

    def after_step(self):
        latest = self.trainer.storage.latest()
        self.per_epoch.setdefault(self.trainer.epoch, set()).update(k for k in latest if "loss" in k)


def tiny_miot_model(two_stream: bool = True, pretrain_path: str = "", partial: bool = False, depth: str = "18x",
                    backbone: str = "resnet"):
    """A MIOT model (ResNet-18 backbone, 512-d, or ResNet-50 with ``depth`` "50x", or
    MobileNetV2 1.0x, 1280-d, with ``backbone`` "mobilenetv2"; CPU; random weights or those of
    ``pretrain_path``, loaded partially with ``partial``) in training mode."""
    from fastreid.config import get_cfg
    from fastreid.modeling import build_model

    from fastreid_ext import add_ext_config
    from miot import add_miot_config

    cfg = add_miot_config(add_ext_config(get_cfg()))
    cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.DEVICE = "MIOT", "cpu"
    cfg.MODEL.BACKBONE.DEPTH, cfg.MODEL.BACKBONE.FEAT_DIM = depth, {"18x": 512, "50x": 2048}[depth]
    if backbone == "mobilenetv2":
        cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.DEPTH, cfg.MODEL.BACKBONE.FEAT_DIM = \
            "build_mobilenetv2_backbone", "1.0x", 1280
    cfg.MODEL.BACKBONE.PRETRAIN, cfg.MODEL.BACKBONE.PRETRAIN_PATH = bool(pretrain_path), pretrain_path
    cfg.MODEL.BACKBONE.PRETRAIN_PARTIAL = partial
    cfg.MODEL.HEADS.POOL_LAYER = "GeneralizedMeanPoolingP"
    cfg.MIOT.TWO_STREAM = two_stream
    return build_model(cfg).train()
