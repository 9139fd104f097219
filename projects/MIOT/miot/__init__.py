"""MIOT: Mutual-Information guided Optimal Transport for unsupervised visible-infrared ReID.

Importing registers the "MIOT" meta-architecture and the "MIOTTrainer" trainer.
"""
from .config import add_miot_config
from .meta_arch import MIOT
from .trainer import MIOTTrainer

__all__ = ["MIOT", "MIOTTrainer", "add_miot_config"]
