"""Small helpers shared across the toolkit: device availability, registry contents, faults
that must stop every process."""
from typing import List, Optional, Type

import torch


def cuda_usable() -> bool:
    """True when torch can actually use a CUDA device here."""
    return torch.cuda.is_available() and torch.cuda.device_count() > 0


def registered_names(registry) -> List[str]:
    """Sorted names registered in a fastreid ``Registry`` (iterable through :mod:`fastreid_ext.compat`)."""
    return sorted(name for name, _ in registry)


def raise_on_any_rank(problem: Optional[str], error: Type[Exception] = FloatingPointError) -> None:
    """Raise ``error`` in every process when any process reports a ``problem`` (a message, or
    None when all is well), naming the rank(s) it came from, so that a fault on one rank stops
    all of them instead of leaving the others blocked in the next collective (DDP's gradient
    all-reduce). Every process must call it at the same point; one process raises its own
    problem as it is."""
    from fastreid.utils import comm

    if comm.get_world_size() == 1:
        if problem:
            raise error(problem)
        return
    faults = [(rank, message) for rank, message in enumerate(comm.all_gather(problem)) if message]
    if faults:
        raise error("; ".join(f"rank {rank}: {message}" for rank, message in faults))
