"""MIOTTrainer: the toolkit's pseudo-label trainer with MIOT's loop hook and settings."""
from fastreid_ext.engine import TRAINER_REGISTRY
from fastreid_ext.engine.loop import ClusterSettings, LoopSettings
from fastreid_ext.engine.pseudo_trainer import PseudoLabelTrainer

from .hooks import MIOTLoopHook


@TRAINER_REGISTRY.register()
class MIOTTrainer(PseudoLabelTrainer):
    """Trains MIOT with fastreid's loop; the loop's settings come from ``MIOT.*``."""

    loop_class = MIOTLoopHook
    loop_checkpoint_key = "miot"

    @classmethod
    def iterations_per_epoch(cls, cfg) -> int:
        return cfg.MIOT.ITERS

    @classmethod
    def loop_settings(cls, cfg) -> LoopSettings:
        return LoopSettings(
            cluster=ClusterSettings.from_config(cfg, "MIOT.CLUSTER"), extract_flip=cfg.MIOT.EXTRACT_FLIP,
            extract_batch=cfg.MIOT.EXTRACT_BATCH, cache_mb=cfg.MIOT.EXTRACT_CACHE_MB,
            diagnostics=cfg.MIOT.DIAGNOSTICS, progress=cfg.get("PROGRESS", "auto"), keys="MIOT")
