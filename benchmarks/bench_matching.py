#!/usr/bin/env python3
"""Sinkhorn on the costs the matcher meets: ours (stabilised, over-relaxed) vs POT's plain and
log-domain Sinkhorn, at the same marginal error.

    python benchmarks/bench_matching.py [--sizes 500x500,1000x1000,2000x1500] [--regs 0.05,0.01]

Costs: 1 − cos between prototypes of the same identities in two modalities (2048-d, a noisy
permutation; ``fastreid_ext.testing.synthetic_prototype_cost``), uniform marginals, float64. One stopping
rule for all: the L1 marginal error ||P1 − a||_1 + ||Pᵀ1 − b||_1 of the returned plan, measured
here, at most ``--tol``. Ours stops on exactly that; POT stops on its own criterion (the L2 norm
of one marginal's error, every 10 iterations), so its ``stopThr`` is lowered until its plan
meets the rule, and the run that meets it is timed. POT's log-domain solver makes the same
iterates as its plain one; it is timed over ``--log-iters`` iterations and its time for the
iterations its plain solver needed is extrapolated (marked "est."). Best of ``--repeats``.
A second table checks small ε in float64 and float32: converged, finite, iterations.
"""
import argparse
import time
import warnings

import numpy as np
import ot
import torch

from fastreid_ext.matching import sinkhorn
from fastreid_ext.testing import synthetic_prototype_cost
from runs import best_of


def marginal_error(plan: np.ndarray) -> float:
    n, m = plan.shape
    return float(np.abs(plan.sum(1) - 1 / n).sum() + np.abs(plan.sum(0) - 1 / m).sum())


def pot_plain_at(cost, reg, tol, repeats, max_iter):
    """(seconds, iterations, L1 error) of POT's plain Sinkhorn with the largest stopThr meeting ``tol``."""
    n, m = cost.shape
    a, b = np.full(n, 1 / n), np.full(m, 1 / m)
    for stop in tol * np.logspace(0, -6, 13):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan, log = ot.sinkhorn(a, b, cost, reg, numItermax=max_iter, stopThr=stop, log=True)
        if marginal_error(plan) <= tol:
            seconds, _ = best_of(lambda: ot.sinkhorn(a, b, cost, reg, numItermax=max_iter, stopThr=stop), repeats)
            return seconds, log["niter"], marginal_error(plan)
    return float("nan"), log["niter"], marginal_error(plan)


def pot_log_per_iteration(cost, reg, iterations):
    n, m = cost.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        ot.sinkhorn(np.full(n, 1 / n), np.full(m, 1 / m), cost, reg, method="sinkhorn_log", numItermax=iterations,
                    stopThr=0.0)
    return (time.perf_counter() - start) / iterations


def speed_table(args) -> None:
    print(f"float64, tol {args.tol:g} (L1 marginal error), 2048-d prototype costs, noise {args.noise}, "
          f"torch threads {torch.get_num_threads()}, best of {args.repeats}")
    print("| size | reg | ours s | ours iters | ours L1 err | POT plain s | POT iters | POT L1 err | POT log s (est.) "
          "| plain / ours | log / ours |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size, reg in ((s, float(r)) for s in args.sizes.split(",") for r in args.regs.split(",")):
        n, m = (int(v) for v in size.split("x"))
        cost = synthetic_prototype_cost(n, m, noise=args.noise, seed=n + m)
        cost_t = torch.from_numpy(cost)
        ours_s, (plan, log) = best_of(lambda: sinkhorn(cost_t, reg=reg, max_iter=args.max_iter, tol=args.tol,
                                                       log=True), args.repeats)
        pot_s, pot_iters, pot_err = pot_plain_at(cost, reg, args.tol, args.repeats, args.max_iter)
        if pot_iters > 0:
            log_s = pot_log_per_iteration(cost, reg, min(args.log_iters, pot_iters)) * pot_iters
            log_cells = f"{log_s:.1f} | {log_s / ours_s:.0f}x"
        else:  # POT's plain solver met the rule before its first iteration: nothing to extrapolate
            log_cells = "- | -"
        plain_ratio, log_time, log_ratio = f"{pot_s / ours_s:.1f}x", *log_cells.split(" | ")
        print(f"| {n}x{m} | {reg} | {ours_s:.3f} | {log['iterations']} | {marginal_error(plan.numpy()):.1e} | "
              f"{pot_s:.3f} | {pot_iters} | {pot_err:.1e} | {log_time} | {plain_ratio} | {log_ratio} |", flush=True)


def small_reg_table(args) -> None:
    n, m = (int(v) for v in args.small_size.split("x"))
    cost = synthetic_prototype_cost(n, m, noise=args.noise, seed=7)
    print(f"\nsmall ε, {n}x{m}: ours (tol {args.tol:g} float64, 1e-5 float32) vs POT plain (stopThr {args.tol:g})")
    print("| reg | dtype | ours converged | ours finite | ours iters | ours L1 err | POT plain finite | POT L1 err | "
          "POT warnings |")
    print("|---|---|---|---|---|---|---|---|---|")
    for reg in (0.005, 0.001):
        for dtype in (torch.float64, torch.float32):
            tol = args.tol if dtype == torch.float64 else 1e-5
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plan, log = sinkhorn(torch.from_numpy(cost).to(dtype), reg=reg, max_iter=args.max_iter, tol=tol,
                                     log=True)
            np_dtype = np.float64 if dtype == torch.float64 else np.float32
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pot = ot.sinkhorn(np.full(n, 1 / n, np_dtype), np.full(m, 1 / m, np_dtype), cost.astype(np_dtype),
                                  reg, numItermax=args.max_iter, stopThr=args.tol)
            messages = sorted({str(w.message).split(".")[0][:40] for w in caught})
            print(f"| {reg} | {str(dtype)[6:]} | {log['converged']} | {bool(torch.isfinite(plan).all())} | "
                  f"{log['iterations']} | {marginal_error(plan.double().numpy()):.1e} | "
                  f"{bool(np.isfinite(pot).all())} | {marginal_error(pot.astype(np.float64)):.1e} | "
                  f"{'; '.join(messages) or '-'} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="500x500,1000x1000,2000x2000,2000x1500")
    parser.add_argument("--regs", default="0.05,0.01")
    parser.add_argument("--noise", type=float, default=0.5, help="prototype noise (0.5: a hard, near-permutation cost)")
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--max-iter", type=int, default=100000)
    parser.add_argument("--log-iters", type=int, default=200, help="iterations POT's log-domain solver is timed over")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small-size", default="1000x800")
    args = parser.parse_args()
    speed_table(args)
    small_reg_table(args)


if __name__ == "__main__":
    main()
