"""Model helpers any fastreid project can use: loading backbone weights from local files."""
from .weights import backbone_state_dict, load_backbone_weights, packaged_weights

__all__ = ["backbone_state_dict", "load_backbone_weights", "packaged_weights"]
