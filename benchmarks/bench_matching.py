#!/usr/bin/env python3
"""Log-domain Sinkhorn: ours (torch) vs POT's ``ot.sinkhorn(method="sinkhorn_log")``.

    python benchmarks/bench_matching.py [--regs 0.05,0.01] [--sizes 500x400,2000x2000] [--repeats 3]

Random costs in [0, 2] (like 1 - cos between prototypes), uniform marginals, the same stopping
threshold for both (1e-6 on the marginal error; POT checks it every 10 iterations, on the
other marginal). Prints, per size: best-of-N seconds, iterations and the max absolute
marginal error of each plan, and the speed ratio POT / ours, all measured in this run.
"""
import argparse
import time

import numpy as np
import ot
import torch

from fastreid_ext.matching import sinkhorn


def marginal_error(plan: np.ndarray) -> float:
    n, m = plan.shape
    return float(max(np.abs(plan.sum(1) - 1 / n).max(), np.abs(plan.sum(0) - 1 / m).max()))


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regs", default="0.05,0.01", help="comma-separated regularisations")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="500x400,2000x2000")
    args = parser.parse_args()
    print(f"float64, tol=1e-6, torch threads={torch.get_num_threads()}")
    print("| size | reg | ours s | ours iters | ours max marginal err | POT s | POT iters | POT max marginal err | POT/ours |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, reg in ((s, float(r)) for s in args.sizes.split(",") for r in args.regs.split(",")):
        n, m = (int(v) for v in size.split("x"))
        cost = 2 * np.random.default_rng(n + m).random((n, m))
        cost_t = torch.from_numpy(cost)
        ours_s, (plan, log) = best_of(lambda: sinkhorn(cost_t, reg=reg, max_iter=10000, tol=1e-6, log=True),
                                      args.repeats)
        pot_s, (pot_plan, pot_log) = best_of(
            lambda: ot.sinkhorn(np.full(n, 1 / n), np.full(m, 1 / m), cost, reg, method="sinkhorn_log",
                                numItermax=10000, stopThr=1e-6, log=True), args.repeats)
        print(f"| {n}x{m} | {reg} | {ours_s:.3f} | {log['iterations']} | {marginal_error(plan.numpy()):.1e} | "
              f"{pot_s:.3f} | {pot_log['niter']} | {marginal_error(pot_plan):.1e} | {pot_s / ours_s:.1f}x |",
              flush=True)


if __name__ == "__main__":
    main()
