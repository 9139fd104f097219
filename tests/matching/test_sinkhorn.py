"""Stabilised, over-relaxed Sinkhorn: marginals, agreement with POT's log-domain solver, stability
for small regularisation, and a warning when it does not converge."""
import warnings

import numpy as np
import ot
import pytest
import torch

from fastreid_ext.matching import SinkhornConvergenceWarning, sinkhorn
from fastreid_ext.testing import synthetic_prototype_cost


def random_cost(n, m, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.rand(n, m, generator=g)).to(dtype)  # costs in [0, 2], like 1 - cos


@pytest.mark.parametrize("shape", [(5, 5), (40, 25), (7, 60)])
def test_uniform_marginals_are_met(shape):
    plan = sinkhorn(random_cost(*shape), reg=0.05)
    n, m = shape
    torch.testing.assert_close(plan.sum(1), torch.full((n,), 1 / n, dtype=plan.dtype), atol=1e-5, rtol=0)
    torch.testing.assert_close(plan.sum(0), torch.full((m,), 1 / m, dtype=plan.dtype), atol=1e-5, rtol=0)


def test_given_marginals_are_met():
    a = torch.tensor([0.5, 0.2, 0.3], dtype=torch.float64)
    b = torch.tensor([0.1, 0.6, 0.1, 0.2], dtype=torch.float64)
    plan = sinkhorn(random_cost(3, 4, 1), a, b, reg=0.1)
    torch.testing.assert_close(plan.sum(1), a, atol=1e-5, rtol=0)
    torch.testing.assert_close(plan.sum(0), b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("seed,reg", [(0, 0.05), (1, 0.1), (2, 0.02), (3, 0.5)])
def test_plan_equals_pots_log_domain_sinkhorn(seed, reg):
    cost = random_cost(30, 20, seed)
    ours = sinkhorn(cost, reg=reg, max_iter=5000, tol=1e-10)
    reference = ot.sinkhorn(np.full(30, 1 / 30), np.full(20, 1 / 20), cost.numpy(), reg,
                            method="sinkhorn_log", numItermax=5000, stopThr=1e-10)
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-9, rtol=1e-6)


@pytest.mark.parametrize("shape,reg", [((80, 80), 0.05), ((80, 60), 0.05), ((60, 80), 0.01), ((80, 60), 0.005)])
def test_plan_equals_pots_log_domain_sinkhorn_on_prototype_costs(shape, reg):
    cost = synthetic_prototype_cost(*shape, dim=128, noise=0.7, seed=3)  # a noisy permutation, as the matcher meets
    ours, log = sinkhorn(torch.from_numpy(cost), reg=reg, max_iter=100000, tol=1e-11, log=True)
    reference = ot.sinkhorn(np.full(shape[0], 1 / shape[0]), np.full(shape[1], 1 / shape[1]), cost, reg,
                            method="sinkhorn_log", numItermax=100000, stopThr=1e-12)
    assert log["converged"]
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-10, rtol=1e-6)


def test_over_relaxation_gives_the_plain_iterations_plan_in_fewer_iterations():
    cost = torch.from_numpy(synthetic_prototype_cost(100, 100, dim=256, noise=0.5, seed=1))  # slow for plain Sinkhorn
    relaxed, fast = sinkhorn(cost, reg=0.05, max_iter=100000, tol=1e-9, log=True)
    plain, slow = sinkhorn(cost, reg=0.05, max_iter=100000, tol=1e-9, log=True, max_omega=1.0)
    assert fast["converged"] and slow["converged"] and fast["iterations"] < slow["iterations"] / 2
    torch.testing.assert_close(relaxed, plain, atol=1e-11, rtol=1e-6)


def optimal_factor(plain_rate):
    """Young's optimal over-relaxation factor for a linear rate of plain iterations."""
    return 2.0 / (1.0 + np.sqrt(1.0 - plain_rate))


def test_the_relaxation_factor_follows_the_rate_of_the_last_window():
    """From plain steps the observed rate is the plain rate; from steps at the optimal factor it is
    omega - 1 (the SOR relation), which gives back the same factor; no progress means plain steps."""
    from fastreid_ext.matching.sinkhorn import _relaxation

    plain = 0.81  # error falls by 0.81 per plain iteration
    best = optimal_factor(plain)  # 1.3929
    assert _relaxation(1.0, plain ** 10, 1.0, 10, 1.95) == pytest.approx(best, rel=1e-12)
    assert _relaxation(1e-2, 1e-2 * (best - 1) ** 20, best, 20, 1.95) == pytest.approx(best, rel=1e-9)
    assert _relaxation(1.0, 0.99 ** 5, 1.0, 5, 1.95) == pytest.approx(optimal_factor(0.99), rel=1e-9)
    assert _relaxation(1.0, plain ** 10, 1.0, 10, 1.2) == 1.2  # capped
    assert _relaxation(1.0, plain ** 10, 1.0, 10, 1.0) == 1.0  # over-relaxation off
    assert _relaxation(1.0, plain ** 10, 1.0, 10, 0.5) == 1.0  # a cap below 1 also means plain steps
    assert _relaxation(1.0, 1.0, 1.3, 10, 1.95) == 1.0  # no progress over the window
    assert _relaxation(1.0, 0.0, 1.3, 10, 1.95) == 1.0  # converged exactly


@pytest.mark.parametrize("reg", [5e-3, 1e-3])
def test_small_regularisation_stays_finite_and_converges_in_both_precisions(reg):
    # exp(-C/reg) under- and overflows outside the log domain (float32 already at reg 5e-3)
    cost = torch.from_numpy(synthetic_prototype_cost(60, 45, dim=128, noise=0.7, seed=3))
    plan, log = sinkhorn(cost, reg=reg, max_iter=30000, tol=1e-6, log=True)
    assert torch.isfinite(plan).all() and log["converged"] and log["err"] < 1e-6
    torch.testing.assert_close(plan.sum(0), torch.full((45,), 1 / 45, dtype=plan.dtype), atol=1e-6, rtol=0)
    plan32, log32 = sinkhorn(cost.float(), reg=reg, max_iter=30000, tol=1e-5, log=True)
    assert plan32.dtype == torch.float32 and torch.isfinite(plan32).all() and log32["converged"]
    torch.testing.assert_close(plan32.double(), plan, atol=1e-5, rtol=0)


def test_random_costs_at_tiny_regularisation_stay_finite_and_feasible():
    plan, log = sinkhorn(random_cost(50, 30, 4), reg=1e-3, max_iter=30000, tol=1e-5, log=True)
    assert torch.isfinite(plan).all() and log["converged"] and log["err"] < 1e-5
    torch.testing.assert_close(plan.sum(0), torch.full((30,), 1 / 30, dtype=plan.dtype), atol=1e-5, rtol=0)


def test_log_reports_iterations_and_stops_on_the_marginal_error():
    _, loose = sinkhorn(random_cost(20, 20), reg=0.05, tol=1e-3, log=True)
    _, tight = sinkhorn(random_cost(20, 20), reg=0.05, tol=1e-9, log=True)
    assert loose["iterations"] < tight["iterations"] and loose["err"] < 1e-3 and tight["err"] < 1e-9


def true_marginal_error(plan, a, b):
    return float((plan.sum(1) - a).abs().sum() + (plan.sum(0) - b).abs().sum())


@pytest.mark.parametrize("max_iter", [1, 7, 25, 60, 85])  # it converges after 91
def test_the_reported_error_is_the_returned_plans_marginal_error(max_iter):
    """At every stopping point, plain steps (the first window) or over-relaxed ones (later), converged
    or not, log["err"] is ||Q 1 - a||_1 + ||Q^T 1 - b||_1 of the plan returned."""
    cost = torch.from_numpy(synthetic_prototype_cost(40, 30, dim=64, noise=0.5, seed=2))
    a, b = torch.full((40,), 1 / 40, dtype=torch.float64), torch.full((30,), 1 / 30, dtype=torch.float64)
    plan, log = sinkhorn(cost, reg=0.02, max_iter=max_iter, tol=1e-12, log=True, warn=False)
    assert log["iterations"] == max_iter
    assert log["err"] == pytest.approx(true_marginal_error(plan, a, b), rel=1e-6, abs=1e-14)


def test_one_iteration_is_one_column_scaling_of_the_stabilised_kernel():
    """From the documented start, K_ij = a_i exp((min_l C_il - C_ij) / reg) and u = 1, iteration 1 sets
    v = b / K^T 1; the row error of that plan is measured and reported (no over-relaxation yet)."""
    cost = random_cost(6, 4, seed=5)
    reg = 0.5
    kernel = torch.exp((cost.min(dim=1, keepdim=True).values - cost) / reg) / 6
    expected = kernel * (0.25 / kernel.sum(0))[None, :]  # its columns are met, its rows not yet
    plan, log = sinkhorn(cost, reg=reg, max_iter=1, tol=1e-12, log=True, warn=False)
    torch.testing.assert_close(plan, expected, rtol=1e-10, atol=0)
    assert log["iterations"] == 1
    assert log["err"] == pytest.approx(float((expected.sum(1) - 1 / 6).abs().sum()), rel=1e-10)


def test_the_logged_potentials_give_the_plan():
    """Q_ij = exp((f_i + g_j - C_ij) / reg): f and g are the dual potentials of the returned plan."""
    cost = random_cost(15, 11, seed=6)
    for max_omega in (1.0, 1.95):
        plan, log = sinkhorn(cost, reg=0.01, max_iter=5000, tol=1e-10, log=True, max_omega=max_omega)
        torch.testing.assert_close(torch.exp((log["f"][:, None] + log["g"][None, :] - cost) / 0.01), plan,
                                   rtol=1e-9, atol=1e-15)


def test_an_unconverged_plan_is_reported_with_reg_iterations_and_error():
    with pytest.warns(SinkhornConvergenceWarning, match=r"did not converge: reg=0.001, 3 iterations \(max_iter=3\), "
                                                        r"marginal error [0-9.e-]+ > tol 1e-12"):
        _, capped = sinkhorn(random_cost(20, 20), reg=0.001, tol=1e-12, max_iter=3, log=True)
    assert capped["iterations"] == 3 and not capped["converged"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a converged solve is silent
        sinkhorn(random_cost(20, 20), reg=0.05)
        sinkhorn(random_cost(20, 20), reg=0.001, tol=1e-12, max_iter=3, warn=False)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="non-empty 2-D matrix"):
        sinkhorn(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="NaN or inf"):
        sinkhorn(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="reg must be > 0"):
        sinkhorn(torch.ones(2, 2), reg=0)
    with pytest.raises(ValueError, match=r"marginal b must have shape \(2,\)"):
        sinkhorn(torch.ones(2, 2), b=torch.ones(3) / 3)
    with pytest.raises(ValueError, match="same total mass"):
        sinkhorn(torch.ones(2, 2), a=torch.tensor([0.5, 0.5]), b=torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match=r"max_omega must be in \[1, 2\)"):
        sinkhorn(torch.ones(2, 2), max_omega=2.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_plan_equals_cpu_plan():
    cost = random_cost(64, 48, 5)
    torch.testing.assert_close(sinkhorn(cost.cuda()).cpu(), sinkhorn(cost), atol=1e-10, rtol=1e-7)
