"""Log-domain Sinkhorn: marginals, agreement with POT, stability for small regularisation."""
import numpy as np
import ot
import pytest
import torch

from fastreid_ext.matching import sinkhorn


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


def test_tiny_regularisation_stays_finite_and_feasible():
    # reg = 1e-3 on costs in [0, 2]: exp(-C/reg) underflows to 0 outside the log domain
    plan, log = sinkhorn(random_cost(50, 30, 4), reg=1e-3, max_iter=30000, tol=1e-5, log=True)
    assert torch.isfinite(plan).all() and log["converged"] and log["err"] < 1e-5
    torch.testing.assert_close(plan.sum(0), torch.full((30,), 1 / 30, dtype=plan.dtype), atol=1e-5, rtol=0)
    plan32, log32 = sinkhorn(random_cost(50, 30, 4, torch.float32), reg=1e-3, max_iter=3000, log=True)
    assert plan32.dtype == torch.float32 and torch.isfinite(plan32).all() and log32["err"] < 1e-2
    torch.testing.assert_close(plan32.sum(0), torch.full((30,), 1 / 30), atol=1e-5, rtol=0)


def test_log_reports_iterations_and_stops_on_the_marginal_error():
    _, loose = sinkhorn(random_cost(20, 20), reg=0.05, tol=1e-3, log=True)
    _, tight = sinkhorn(random_cost(20, 20), reg=0.05, tol=1e-9, log=True)
    assert loose["iterations"] < tight["iterations"] and loose["err"] < 1e-3 and tight["err"] < 1e-9
    _, capped = sinkhorn(random_cost(20, 20), reg=0.001, tol=1e-12, max_iter=3, log=True)
    assert capped["iterations"] == 3 and not capped["converged"]


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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_plan_equals_cpu_plan():
    cost = random_cost(64, 48, 5)
    torch.testing.assert_close(sinkhorn(cost.cuda()).cpu(), sinkhorn(cost), atol=1e-10, rtol=1e-7)
