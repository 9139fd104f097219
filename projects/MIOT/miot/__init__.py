"""MIOT: Mutual-Information guided Optimal Transport for unsupervised visible-infrared ReID."""
from .config import add_miot_config

__all__ = ["add_miot_config"]
