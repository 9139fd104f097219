"""Entropic optimal transport: Sinkhorn scaling on a stabilised kernel, over-relaxed."""
import math
import warnings
from typing import Dict, Optional, Tuple, Union

import torch


class SinkhornConvergenceWarning(RuntimeWarning):
    """Sinkhorn stopped at ``max_iter`` before the marginal error reached ``tol``."""


def _marginal(weights: Optional[torch.Tensor], size: int, like: torch.Tensor, name: str) -> torch.Tensor:
    if weights is None:
        return torch.full((size,), 1.0 / size, dtype=like.dtype, device=like.device)
    weights = torch.as_tensor(weights, dtype=like.dtype, device=like.device)
    if weights.shape != (size,):
        raise ValueError(f"marginal {name} must have shape ({size},), got {tuple(weights.shape)}")
    if not torch.isfinite(weights).all() or (weights < 0).any():
        raise ValueError(f"marginal {name} must be finite and non-negative")
    return weights


def _check(cost: torch.Tensor, reg: float) -> torch.Tensor:
    cost = torch.as_tensor(cost)
    if cost.dim() != 2 or cost.numel() == 0:
        raise ValueError(f"cost must be a non-empty 2-D matrix, got shape {tuple(cost.shape)}")
    if not cost.is_floating_point():
        cost = cost.double()
    if not torch.isfinite(cost).all():
        raise ValueError("cost contains NaN or inf")
    if not reg > 0:
        raise ValueError(f"reg must be > 0, got {reg}")
    return cost


def _log_update(cost: torch.Tensor, potential: torch.Tensor, log_marginal: torch.Tensor, reg: float,
                dim: int) -> torch.Tensor:
    """Exact log-domain update of one potential given the other: reg (log m - LSE((p - C)/reg))."""
    shifted = (potential[None, :] if dim == 1 else potential[:, None]) - cost
    return reg * (log_marginal - torch.logsumexp(shifted / reg, dim=dim))


def _relaxation(error_start: float, error_end: float, omega: float, window: int, max_omega: float) -> float:
    """Over-relaxation factor for the next ``window`` iterations, from the marginal error at the
    start and end of the last window run with factor ``omega``.

    The linear rate λ of plain Sinkhorn is inferred from the observed rate r with the relation
    of successive over-relaxation, (r + ω − 1)² = r ω² λ, which Sinkhorn's linearisation obeys
    near the solution, and ω = 2 / (1 + sqrt(1 − λ)) is the optimal factor for it (Thibault et
    al., "Overrelaxed Sinkhorn-Knopp algorithm for regularized optimal transport", Algorithms
    2021; Lehmann et al., "A note on overrelaxation in the Sinkhorn algorithm", Optim. Lett.
    2022). If the error did not fall over the window, the next window takes plain steps
    (always convergent) and the factor is estimated afresh from them.
    """
    if max_omega <= 1 or error_end <= 0:
        return 1.0
    if not error_end < error_start:
        return 1.0  # no progress: a window of plain steps, then a fresh estimate
    rate = (error_end / error_start) ** (1.0 / window)
    plain_rate = min(1.0, (rate + omega - 1.0) ** 2 / (rate * omega ** 2))
    return min(max_omega, 2.0 / (1.0 + math.sqrt(1.0 - plain_rate)))


def _kernel(cost: torch.Tensor, f: torch.Tensor, g: torch.Tensor, reg: float) -> torch.Tensor:
    """(n, m) stabilised kernel exp((f_i + g_j − C_ij)/ε)."""
    return (f[:, None] + g[None, :]).sub_(cost).div_(reg).exp_()


def _absorb(cost: torch.Tensor, potential: torch.Tensor, scaling: torch.Tensor, other_log_marginal: torch.Tensor,
            reg: float, dim: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fold ``scaling`` into ``potential`` (ε log), then solve the other potential exactly in the
    log domain (its marginal met, its scaling 1): (potential, other potential)."""
    potential = potential + reg * torch.log(scaling)
    return potential, _log_update(cost, potential, other_log_marginal, reg, dim)


def _relaxed(scaling: torch.Tensor, sinkhorn_update: torch.Tensor, omega: float) -> torch.Tensor:
    """scaling^(1-ω) · update^ω: the plain Sinkhorn update for ω = 1."""
    return sinkhorn_update if omega == 1.0 else scaling.pow(1.0 - omega) * sinkhorn_update.pow(omega)


def _scale(cost: torch.Tensor, a: torch.Tensor, b: torch.Tensor, reg: float, max_iter: int, tol: float,
           absorb_at: float, max_omega: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, float]:
    """Sinkhorn scaling; returns (plan, f, g, iterations, marginal L1 error).

    The plan is diag(u) K diag(v) with the stabilised kernel K = exp((f ⊕ g − C)/ε), starting
    from f_i = min_j C_ij + ε log a_i (row i's largest entry is a_i) and g = 0: u and v stay
    near 1, and are absorbed into the potentials (K rebuilt) as soon as one of them leaves
    [1/absorb_at, absorb_at] or is not finite, so nothing overflows however small ε is. Each
    update may be over-relaxed, u <- u^(1-ω) (a / K v)^ω (ω = 1: plain Sinkhorn); the fixed
    point, hence the plan, is the same.
    """
    log_a, log_b = torch.log(a), torch.log(b)
    low, high = 1.0 / absorb_at, absorb_at

    def stable(x: torch.Tensor) -> bool:
        smallest, largest = torch.aminmax(x)
        return low < float(smallest) and float(largest) < high  # False for NaN and inf too

    f, g = cost.min(dim=1).values + reg * log_a, torch.zeros_like(b)
    kernel = _kernel(cost, f, g, reg)
    u, v = torch.ones_like(f), torch.ones_like(g)
    omega, window, window_start, start_it = 1.0, 10, None, 0
    err, it = float("inf"), 0
    for it in range(1, max_iter + 1):
        kernel_t_u = kernel.t() @ u  # (m,) column sums of the plan are v * kernel_t_u
        v = _relaxed(v, b / kernel_t_u, omega)
        if not stable(v):  # columns exact in the log domain: v = 1
            f, g = _absorb(cost, f, u, log_b, reg, dim=0)
            kernel, u, v, kernel_t_u = _kernel(cost, f, g, reg), torch.ones_like(f), torch.ones_like(g), b.clone()
        kernel_v = kernel @ v  # (n,) row sums of the plan are u * kernel_v
        err = torch.dist(u * kernel_v, a, 1)  # plain steps leave the columns exact: only rows to check
        err = float(err if omega == 1.0 else err + torch.dist(v * kernel_t_u, b, 1))
        if err < tol or it == max_iter:  # the plan returned is the one this error was measured on
            break
        if window_start is None:  # measured after the window's first step, with its own factor
            window_start, start_it = err, it
        elif it - start_it == window:
            omega, window_start = _relaxation(window_start, err, omega, window, max_omega), None
        u = _relaxed(u, a / kernel_v, omega)
        if not stable(u):  # rows exact in the log domain: u = 1
            g, f = _absorb(cost, g, v, log_a, reg, dim=1)
            kernel, u = _kernel(cost, f, g, reg), torch.ones_like(f)
    plan = kernel.mul_(u[:, None]).mul_(v[None, :])
    return plan, f + reg * torch.log(u), g + reg * torch.log(v), it, err


def sinkhorn(cost: torch.Tensor, a: Optional[torch.Tensor] = None, b: Optional[torch.Tensor] = None,
             reg: float = 0.05, max_iter: int = 1000, tol: float = 1e-6, log: bool = False,
             max_omega: float = 1.95, absorb_at: float = 1e3,
             warn: bool = True) -> Union[torch.Tensor, Tuple[torch.Tensor, Dict]]:
    r"""Entropy-regularised optimal transport plan (Cuturi, NeurIPS 2013).

    Solves

    .. math::
        Q^* = \arg\min_{Q \ge 0} \langle Q, C \rangle - \varepsilon H(Q)
        \quad \text{s.t.} \quad Q \mathbf{1} = a, \; Q^\top \mathbf{1} = b,
        \qquad H(Q) = -\sum_{ij} Q_{ij} (\log Q_{ij} - 1)

    by Sinkhorn scaling Q = diag(u) K diag(v) on a kernel stabilised by dual potentials,
    K = exp((f_i + g_j − C_ij)/ε), whose scalings are absorbed into f, g whenever they grow
    (Schmitzer, "Stabilized sparse scaling algorithms for entropy regularized transport
    problems", SIAM J. Sci. Comput. 2019): each iteration is two matrix-vector products, as in
    plain Sinkhorn, and nothing under- or overflows for small ε, as in the log domain. Once the
    plain iterations show their linear rate, the updates are over-relaxed (Thibault et al.,
    Algorithms 2021), which cuts the iterations where ε is small relative to the cost gaps;
    a safeguard returns to plain steps whenever the error stops falling. The iterations stop
    when the marginal error ||Q 1 − a||_1 + ||Qᵀ 1 − b||_1 is below ``tol``; the plan is the
    same as log-domain Sinkhorn's at that tolerance.

    Args:
        cost: (n, m) cost matrix C, float32 or float64 (integers are solved in float64), on any device.
        a: (n,) source marginal, finite and non-negative; uniform 1/n by default.
        b: (m,) target marginal; uniform 1/m by default. Must have the same total as ``a``.
        reg: entropic regularisation ε > 0 (in the units of the cost); default 0.05.
        max_iter: maximum number of (row, column) update pairs, at least 1; default 1000.
        tol: stopping threshold on the L1 marginal error; default 1e-6.
        log: also return ``{"iterations", "err", "converged", "f", "g"}``.
        max_omega: largest over-relaxation factor ω in [1, 2); 1 gives plain Sinkhorn updates; default 1.95.
        absorb_at: a scaling outside [1/absorb_at, absorb_at] is absorbed into the potentials; default 1e3.
        warn: issue a :class:`SinkhornConvergenceWarning` (naming ε, the iterations and the
            error reached) when ``tol`` is not met within ``max_iter``.
    Returns:
        the (n, m) plan Q in the dtype and device of ``cost`` (and the log if asked).
    """
    cost = _check(cost, reg)
    if not 1 <= max_omega < 2:
        raise ValueError(f"max_omega must be in [1, 2), got {max_omega}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    n, m = cost.shape
    a, b = _marginal(a, n, cost, "a"), _marginal(b, m, cost, "b")
    if abs(float(a.sum()) - float(b.sum())) > 1e-6 * max(1.0, float(a.sum())):
        raise ValueError(f"marginals must have the same total mass, got {float(a.sum())} and {float(b.sum())}")
    plan, f, g, iterations, err = _scale(cost, a, b, reg, max_iter, tol, absorb_at, max_omega)
    converged = err < tol
    if warn and not converged:
        warnings.warn(f"Sinkhorn did not converge: reg={reg}, {iterations} iterations (max_iter={max_iter}), "
                      f"marginal error {err:.3g} > tol {tol:g}; raise the iteration limit or reg",
                      SinkhornConvergenceWarning, stacklevel=2)
    if log:
        return plan, {"iterations": iterations, "err": err, "converged": converged, "f": f, "g": g}
    return plan
