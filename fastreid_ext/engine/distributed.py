"""Several processes: launching them (fastreid's flags or torchrun), and what makes W processes
train the model that one process trains with the same config."""
import argparse
import os
from typing import Callable, Sequence

from fastreid.utils import comm
from torch import multiprocessing as mp
from torch import nn

from ..compat import DEFAULT_TIMEOUT_MINUTES, distributed_worker
from ..modeling import convert_to_global_batch_norm

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def add_launch_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """fastreid's ``default_argument_parser`` plus ``--dist-timeout`` (minutes)."""
    parser.add_argument("--dist-timeout", type=float, default=DEFAULT_TIMEOUT_MINUTES,
                        help="minutes a process waits for the others in a collective (rank 0 clusters alone "
                             "each epoch)")
    return parser


def under_torchrun() -> bool:
    """Started by ``torchrun`` (or any launcher that sets its environment variables)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def launch(main_func: Callable, args: Sequence = (), num_gpus: int = 1, num_machines: int = 1,
           machine_rank: int = 0, dist_url: str = "auto", timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES) -> None:
    """Run ``main_func(*args)`` in every process of the job.

    Under ``torchrun`` this process is one rank: the process group comes from its environment
    (``env://``: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``) and ``num_gpus`` must stay 1. Otherwise, as fastreid's ``launch``: ``num_gpus``
    processes on this machine (``num_machines`` in all, this one ``machine_rank``), meeting at
    ``dist_url`` ("auto": a free local port, one machine only). NCCL where CUDA is usable, gloo
    otherwise."""
    if under_torchrun():
        missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
        if missing:
            raise RuntimeError(f"torchrun environment incomplete: {missing} unset")
        if num_gpus != 1 or num_machines != 1:
            raise ValueError("under torchrun each process is one rank: leave --num-gpus and --num-machines at 1 "
                             "and give torchrun --nproc-per-node and --nnodes instead")
        local_world = int(os.environ["LOCAL_WORLD_SIZE"])
        distributed_worker(int(os.environ["LOCAL_RANK"]), main_func, int(os.environ["WORLD_SIZE"]), local_world,
                           int(os.environ["RANK"]) // local_world, "env://", tuple(args), timeout_minutes)
        return
    world_size = num_machines * num_gpus
    if world_size == 1:
        main_func(*args)
        return
    if dist_url == "auto":
        if num_machines > 1:
            raise ValueError("--dist-url auto picks a local port: give tcp://HOST:PORT of machine 0 on every machine")
        from fastreid.engine.launch import _find_free_port

        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    mp.spawn(distributed_worker, nprocs=num_gpus, daemon=False,
             args=(main_func, world_size, num_gpus, machine_rank, dist_url, tuple(args), timeout_minutes))


class GlobalBatchNormMixin:
    """For a fastreid ``DefaultTrainer`` subclass: with several processes and ``MODEL.SYNC_BN``,
    the model's batch norms take their training statistics from the global batch (before
    fastreid wraps the model in ``DistributedDataParallel``). A method whose forward normalises
    parts of a batch separately (a per-modality stem) keeps doing so: each part is normalised
    with the statistics of that part over every rank."""

    @classmethod
    def build_model(cls, cfg) -> nn.Module:
        model = super().build_model(cfg)
        if cfg.MODEL.SYNC_BN and comm.get_world_size() > 1:
            model = convert_to_global_batch_norm(model)
        return model
