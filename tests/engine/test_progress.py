"""The progress line's ETA counts the time spent in hooks, not only in iterations."""
import logging

import pytest
from fastreid.utils.events import EventStorage

import fastreid_ext.engine.progress as progress
from fastreid_ext.engine import WallClockMetricPrinter
from fastreid_ext.engine.progress import wall_clock_eta


def test_wall_clock_eta_extrapolates_the_rate_so_far():
    assert wall_clock_eta(elapsed=100.0, iterations_done=10, iterations_left=30) == pytest.approx(300.0)
    with pytest.raises(ValueError, match="no iteration done yet"):
        wall_clock_eta(5.0, 0, 10)


def test_the_eta_includes_hook_time_that_iteration_times_leave_out(monkeypatch, caplog):
    clock = iter([0.0, 100.0])  # start, then the write: 100 s of wall clock for 10 iterations
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    printer = WallClockMetricPrinter(max_iter=40)
    with EventStorage(0) as storage, caplog.at_level(logging.INFO, logger="fastreid_ext.engine.progress"):
        storage.epoch = 0  # the trainer sets it before each epoch
        printer.start(0)
        for iteration in range(10):
            storage.iter = iteration
            storage.put_scalars(time=1.0, loss_intra=2.0, lr=1e-3)  # 1 s per iteration: 90 s were hooks
        printer.write()
        eta = storage.latest()["eta_seconds"][0]
    assert eta == pytest.approx(10.0 * 30)  # fastreid's ETA would say 1 s x 30 = 30 s
    assert "eta: 0:05:00 (hooks included)" in caplog.text and "loss_intra: 2" in caplog.text
