"""MIOT: Mutual-Information guided Optimal Transport for unsupervised visible-infrared ReID.

Importing registers the "MIOT" meta-architecture and the "MIOTTrainer" trainer; ``PROJECT``
(declared as a ``fastreid_ext.projects`` entry point in setup.py) gives the toolkit's entry
points MIOT's config keys and their checks.
"""
from fastreid_ext.engine import Project

from .config import add_miot_config, miot_config_checks
from .meta_arch import MIOT
from .trainer import MIOTTrainer

PROJECT = Project(name="miot", add_config=add_miot_config, config_checks=miot_config_checks)

__all__ = ["MIOT", "MIOTTrainer", "PROJECT", "add_miot_config", "miot_config_checks"]
