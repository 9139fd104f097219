"""Model helpers any fastreid project can use: loading backbone weights from local files, batch
norm over every process's batch."""
from .global_batch_norm import GlobalBatchNorm, convert_to_global_batch_norm
from .weights import backbone_state_dict, load_backbone_weights, packaged_weights

__all__ = ["GlobalBatchNorm", "backbone_state_dict", "convert_to_global_batch_norm", "load_backbone_weights",
           "packaged_weights"]
