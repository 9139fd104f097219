"""Stabilised, over-relaxed Sinkhorn: marginals, agreement with POT's solvers, stability
for small regularisation, and a warning when it does not converge."""
import importlib
import os
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
def test_plan_equals_pots_scaling_sinkhorn_on_prototype_costs(shape, reg):
    cost = synthetic_prototype_cost(*shape, dim=128, noise=0.7, seed=3)  # a noisy permutation, as the matcher meets
    ours, log = sinkhorn(torch.from_numpy(cost), reg=reg, max_iter=100000, tol=1e-11, log=True)
    # POT's plain scaling iterations: in float64 at these regularisations they agree with its log-domain
    # version to 1e-16 and need a tenth of its time (up to 34k iterations here, where ours needs 3.5k)
    reference = ot.sinkhorn(np.full(shape[0], 1 / shape[0]), np.full(shape[1], 1 / shape[1]), cost, reg,
                            method="sinkhorn", numItermax=100000, stopThr=1e-12)
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


@pytest.mark.parametrize("a", [None, [0.1, 0.3, 0.05, 0.2, 0.25, 0.1]])
def test_one_iteration_is_one_column_scaling_of_the_stabilised_kernel(a):
    """From the documented start, K_ij = a_i exp((min_l C_il - C_ij) / reg) and u = 1, iteration 1 sets
    v = b / K^T 1; the row error of that plan is measured and reported (no over-relaxation yet).
    Uneven row weights a_i show the start's reg * log a_i (uniform ones cancel in the column scaling)."""
    cost = random_cost(6, 4, seed=5)
    reg = 0.5
    weights = torch.full((6,), 1 / 6, dtype=cost.dtype) if a is None else torch.tensor(a, dtype=cost.dtype)
    kernel = torch.exp((cost.min(dim=1, keepdim=True).values - cost) / reg) * weights[:, None]
    expected = kernel * (0.25 / kernel.sum(0))[None, :]  # its columns are met, its rows not yet
    plan, log = sinkhorn(cost, None if a is None else weights, reg=reg, max_iter=1, tol=1e-12, log=True, warn=False)
    torch.testing.assert_close(plan, expected, rtol=1e-10, atol=0)
    assert log["iterations"] == 1
    assert log["err"] == pytest.approx(float((expected.sum(1) - weights).abs().sum()), rel=1e-10)


def test_a_scaling_is_absorbed_exactly_when_it_leaves_the_range():
    """Each update's scaling (u or v) is folded into the potentials iff one of its entries leaves
    [1/absorb_at, absorb_at]; a narrow range makes both cases frequent, and the plan is the same."""
    module = importlib.import_module("fastreid_ext.matching.sinkhorn")  # the package exports a function of that name
    events = []

    def relaxed(scaling, update, omega):
        new = module_relaxed(scaling, update, omega)
        events.append(("scaling", float(new.min()), float(new.max())))
        return new

    def absorb(*args, **kwargs):
        events.append(("absorb",))
        return module_absorb(*args, **kwargs)

    module_relaxed, module_absorb = module._relaxed, module._absorb
    cost = random_cost(30, 20, seed=7)
    reference = sinkhorn(cost, reg=0.02, max_iter=5000, tol=1e-10)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "_relaxed", relaxed)
        patch.setattr(module, "_absorb", absorb)
        plan = sinkhorn(cost, reg=0.02, max_iter=5000, tol=1e-10, absorb_at=1.5)
    scalings = [i for i, event in enumerate(events) if event[0] == "scaling"]
    outside = [i for i in scalings if not 1 / 1.5 < events[i][1] <= events[i][2] < 1.5]
    inside = [i for i in scalings if i not in outside]
    assert len(outside) > 5 and len(inside) > 5  # both cases happen
    assert all(events[i + 1] == ("absorb",) for i in outside if i + 1 < len(events))
    assert not any(events[i + 1] == ("absorb",) for i in inside if i + 1 < len(events))
    torch.testing.assert_close(plan, reference, rtol=1e-6, atol=1e-12)


def test_the_logged_potentials_give_the_plan():
    """Q_ij = exp((f_i + g_j - C_ij) / reg): f and g are the dual potentials of the returned plan."""
    cost = random_cost(15, 11, seed=6)
    for max_omega in (1.0, 1.95):
        plan, log = sinkhorn(cost, reg=0.01, max_iter=5000, tol=1e-10, log=True, max_omega=max_omega)
        torch.testing.assert_close(torch.exp((log["f"][:, None] + log["g"][None, :] - cost) / 0.01), plan,
                                   rtol=1e-9, atol=1e-15)


def test_an_unconverged_plan_is_reported_with_reg_iterations_and_error():
    with pytest.warns(SinkhornConvergenceWarning, match=r"did not converge: reg=0.001, 3 iterations \(max_iter=3\), "
                                                        r"marginal error [0-9.e-]+ > tol 1e-12") as record:
        _, capped = sinkhorn(random_cost(20, 20), reg=0.001, tol=1e-12, max_iter=3, log=True)
    assert not record[0].filename.endswith(os.path.join("matching", "sinkhorn.py"))  # it names a caller's line
    assert capped["iterations"] == 3 and not capped["converged"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a converged solve is silent
        sinkhorn(random_cost(20, 20), reg=0.05)
        sinkhorn(random_cost(20, 20), reg=0.001, tol=1e-12, max_iter=3, warn=False)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="non-empty 2-D matrix"):
        sinkhorn(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="^cost contains NaN or inf$"):
        sinkhorn(torch.tensor([[0.0, float("nan")]]))
    for bad in ([0.5, -0.1, 0.6], [0.5, float("nan"), 0.5], [0.5, float("inf"), 0.5]):
        with pytest.raises(ValueError, match="^marginal a must be finite and non-negative$"):
            sinkhorn(torch.ones(3, 2), a=torch.tensor(bad))
    with pytest.raises(ValueError, match="reg must be > 0"):
        sinkhorn(torch.ones(2, 2), reg=0)
    with pytest.raises(ValueError, match=r"marginal b must have shape \(2,\)"):
        sinkhorn(torch.ones(2, 2), b=torch.ones(3) / 3)
    with pytest.raises(ValueError, match="same total mass"):
        sinkhorn(torch.ones(2, 2), a=torch.tensor([0.5, 0.5]), b=torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="same total mass"):  # they may differ by 1e-6 times max(1, mass of a)
        sinkhorn(torch.ones(2, 2).double(), a=[0.5, 0.5], b=[0.5, 0.5 + 1.5e-6])
    sinkhorn(torch.ones(2, 2).double(), a=[0.5, 0.5], b=[0.5, 0.5 + 0.5e-6], max_iter=1, warn=False)
    sinkhorn(torch.ones(2, 2).double(), a=[5.0, 5.0], b=[5.0, 5.0 + 5e-6], max_iter=1, warn=False)
    with pytest.raises(ValueError, match=r"max_omega must be in \[1, 2\)"):
        sinkhorn(torch.ones(2, 2), max_omega=2.0)
    with pytest.raises(ValueError, match="max_iter must be >= 1, got 0"):
        sinkhorn(torch.ones(2, 2), max_iter=0)


def test_given_marginals_take_the_costs_precision_and_may_hold_zeros():
    """Marginals given as Python floats are used in the cost's float64, not rounded to float32; a zero
    weight is allowed and gives an empty row; an integer cost is solved in float64."""
    a = [0.1, 0.3, 0.0, 0.6]
    plan = sinkhorn(random_cost(4, 3, seed=8), a=a, reg=0.1, max_iter=10000, tol=1e-14)
    assert plan.dtype == torch.float64
    torch.testing.assert_close(plan.sum(1), torch.tensor(a, dtype=torch.float64), atol=1e-14, rtol=0)
    assert float(plan[2].abs().max()) == 0.0
    integer = sinkhorn(torch.tensor([[0, 2], [2, 0]]), reg=1.0)
    assert integer.dtype == torch.float64
    torch.testing.assert_close(integer, sinkhorn(torch.tensor([[0.0, 2.0], [2.0, 0.0]], dtype=torch.float64), reg=1.0))


def test_the_rate_is_estimated_from_errors_a_window_apart():
    """The over-relaxation factor is re-estimated from the marginal errors measured at the first and
    last iteration of each window of 10 (iterations 1 and 11, 12 and 22, ...); the error measured at
    iteration k is what a run stopped there reports."""
    module = importlib.import_module("fastreid_ext.matching.sinkhorn")
    cost = torch.from_numpy(synthetic_prototype_cost(40, 30, dim=64, noise=0.5, seed=2))
    calls = []

    def relaxation(error_start, error_end, omega, window, max_omega):
        calls.append((error_start, error_end, window))
        return original(error_start, error_end, omega, window, max_omega)

    original = module._relaxation
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "_relaxation", relaxation)
        sinkhorn(cost, reg=0.02, max_iter=34, tol=1e-12, warn=False)
    errors = {k: sinkhorn(cost, reg=0.02, max_iter=k, tol=1e-12, log=True, warn=False)[1]["err"]
              for k in (1, 11, 12, 22, 23, 33)}
    assert calls == [(errors[1], errors[11], 10), (errors[12], errors[22], 10), (errors[23], errors[33], 10)]


def test_the_documented_defaults_are_the_ones_used():
    """Each default the docstring states ("default X") is the signature's, and leaving the argument
    out gives the run with that value passed (max_iter: an unconverged run stops there)."""
    import inspect
    import re

    documented = {name: float(value) for name, value in
                  re.findall(r"^\s+(\w+): .*; default ([0-9.e-]+)\.$", sinkhorn.__doc__, flags=re.M)}
    assert set(documented) == {"reg", "max_iter", "tol", "max_omega", "absorb_at"}
    for name, value in documented.items():
        assert inspect.signature(sinkhorn).parameters[name].default == value, name
    cost = random_cost(25, 20, seed=9)
    plan, log = sinkhorn(cost, log=True)
    explicit, explicit_log = sinkhorn(cost, reg=documented["reg"], tol=documented["tol"],
                                      max_omega=documented["max_omega"], absorb_at=documented["absorb_at"], log=True)
    assert torch.equal(plan, explicit) and log["iterations"] == explicit_log["iterations"]
    assert sinkhorn(cost, reg=1e-3, tol=1e-15, log=True, warn=False)[1]["iterations"] == documented["max_iter"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_plan_equals_cpu_plan():
    cost = random_cost(64, 48, 5)
    torch.testing.assert_close(sinkhorn(cost.cuda()).cpu(), sinkhorn(cost), atol=1e-10, rtol=1e-7)
