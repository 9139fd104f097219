"""Small helpers shared across the toolkit: device availability, registry contents, faults
that must stop every process, the C allocator's policy."""
import ctypes
import platform
from typing import List, Optional, Type

import torch

# glibc <malloc.h>: mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


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


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep the memory this process frees for its next allocations instead of
    returning it to the system: no allocation is served by a fresh mapping (``M_MMAP_MAX`` 0) and
    the heap's free top is never trimmed (``M_TRIM_THRESHOLD`` at its maximum). By default every
    tensor above glibc's mmap threshold gets a fresh mapping that the kernel fills page by page on
    first touch, at every training step and extraction batch. Changes no number, only where the
    memory comes from; the peak resident size grows somewhat (benchmarks/bench_allocator.py).
    Returns False where the C library is not glibc (nothing to change); raises when glibc refuses."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    for parameter, value in ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2 ** 31 - 1)):
        if libc.mallopt(parameter, value) != 1:
            raise OSError(f"glibc's mallopt({parameter}, {value}) failed; set KEEP_FREED_MEMORY False")
    return True
