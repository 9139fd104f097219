"""Small helpers shared across the toolkit: device availability and registry contents."""
from typing import List

import torch


def cuda_usable() -> bool:
    """True when torch can actually use a CUDA device here."""
    return torch.cuda.is_available() and torch.cuda.device_count() > 0


def registered_names(registry) -> List[str]:
    """Sorted names registered in a fastreid ``Registry`` (iterable through :mod:`fastreid_ext.compat`)."""
    return sorted(name for name, _ in registry)
