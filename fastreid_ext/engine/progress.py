"""fastreid's progress line with an ETA that counts the hooks: extraction, clustering and
evaluation take as long as training in a clustering loop, and fastreid's ETA (median
iteration time x remaining iterations) leaves them out."""
import datetime
import logging
import time
from typing import Optional, Tuple

import torch
from fastreid.utils.events import EventWriter, get_event_storage

logger = logging.getLogger(__name__)


def wall_clock_eta(elapsed: float, iterations_done: int, iterations_left: int) -> float:
    """Seconds left at the wall-clock rate so far (hooks included): elapsed / done x left."""
    if iterations_done <= 0:
        raise ValueError(f"no iteration done yet (got {iterations_done}): no rate to extrapolate")
    return elapsed / iterations_done * iterations_left


class WallClockMetricPrinter(EventWriter):
    """fastreid's ``CommonMetricPrinter`` line (epoch/iter, losses, iteration and data time, lr,
    memory) whose ETA is :func:`wall_clock_eta` since :meth:`start`, so every hook is counted;
    also puts ``eta_seconds`` in the storage."""

    def __init__(self, max_iter: int):
        self._max_iter = max_iter
        self._origin: Optional[Tuple[int, float]] = None  # (first iteration, its wall-clock time)

    def start(self, iteration: int) -> None:
        """Training starts (or resumes) at ``iteration`` now."""
        self._origin = (iteration, time.perf_counter())

    def write(self) -> None:
        storage = get_event_storage()
        iteration = storage.iter
        if iteration >= self._max_iter:
            return
        eta = ""
        if self._origin is not None and iteration + 1 > self._origin[0]:
            seconds = wall_clock_eta(time.perf_counter() - self._origin[1], iteration + 1 - self._origin[0],
                                     self._max_iter - iteration - 1)
            storage.put_scalar("eta_seconds", seconds, smoothing_hint=False)
            eta = f"eta: {datetime.timedelta(seconds=int(seconds))} (hooks included)  "
        histories = storage.histories()
        losses = "  ".join(f"{k}: {v.median(200):.4g}" for k, v in histories.items() if "loss" in k)
        times = "".join(f"{name}: {histories[name].global_avg():.4f}  " for name in ("time", "data_time")
                        if name in histories)
        lr = f"{histories['lr'].latest():.2e}" if "lr" in histories else "N/A"
        memory = f"max_mem: {torch.cuda.max_memory_allocated() / 2 ** 20:.0f}M" if torch.cuda.is_available() else ""
        logger.info(f" {eta}epoch/iter: {storage.epoch}/{iteration}  {losses}  {times}lr: {lr}  {memory}")
