"""Entropic optimal transport solved by Sinkhorn iterations in the log domain."""
from typing import Dict, Optional, Tuple, Union

import torch


def _marginal(weights: Optional[torch.Tensor], size: int, like: torch.Tensor, name: str) -> torch.Tensor:
    if weights is None:
        return torch.full((size,), 1.0 / size, dtype=like.dtype, device=like.device)
    weights = torch.as_tensor(weights, dtype=like.dtype, device=like.device)
    if weights.shape != (size,):
        raise ValueError(f"marginal {name} must have shape ({size},), got {tuple(weights.shape)}")
    if not torch.isfinite(weights).all() or (weights < 0).any():
        raise ValueError(f"marginal {name} must be finite and non-negative")
    return weights


def sinkhorn(cost: torch.Tensor, a: Optional[torch.Tensor] = None, b: Optional[torch.Tensor] = None,
             reg: float = 0.05, max_iter: int = 1000, tol: float = 1e-6,
             log: bool = False) -> Union[torch.Tensor, Tuple[torch.Tensor, Dict]]:
    r"""Entropy-regularised optimal transport plan (Cuturi, NeurIPS 2013), log-domain iterations.

    Solves

    .. math::
        Q^* = \arg\min_{Q \ge 0} \langle Q, C \rangle - \varepsilon H(Q)
        \quad \text{s.t.} \quad Q \mathbf{1} = a, \; Q^\top \mathbf{1} = b,
        \qquad H(Q) = -\sum_{ij} Q_{ij} (\log Q_{ij} - 1)

    with dual potentials f, g updated as f = ε (log a − LSE_j((g_j − C_ij)/ε)) and
    g = ε (log b − LSE_i((f_i − C_ij)/ε)), so that nothing under- or overflows for small ε;
    Q_ij = exp((f_i + g_j − C_ij)/ε). The column marginal is exact after each update; the
    iterations stop when the row-marginal error ||Q 1 − a||_1 is below ``tol``.

    Args:
        cost: (n, m) cost matrix C, float32 or float64, on any device.
        a: (n,) source marginal; uniform 1/n by default.
        b: (m,) target marginal; uniform 1/m by default. Must have the same total as ``a``.
        reg: entropic regularisation ε > 0 (in the units of the cost).
        max_iter: maximum number of (row, column) update pairs.
        tol: stopping threshold on the L1 row-marginal error.
        log: also return ``{"iterations", "err", "converged", "f", "g"}``.
    Returns:
        the (n, m) plan Q in the dtype and device of ``cost`` (and the log if asked).
    """
    cost = torch.as_tensor(cost)
    if cost.dim() != 2 or cost.numel() == 0:
        raise ValueError(f"cost must be a non-empty 2-D matrix, got shape {tuple(cost.shape)}")
    if not cost.is_floating_point():
        cost = cost.double()
    if not torch.isfinite(cost).all():
        raise ValueError("cost contains NaN or inf")
    if not reg > 0:
        raise ValueError(f"reg must be > 0, got {reg}")
    n, m = cost.shape
    a, b = _marginal(a, n, cost, "a"), _marginal(b, m, cost, "b")
    if abs(float(a.sum()) - float(b.sum())) > 1e-6 * max(1.0, float(a.sum())):
        raise ValueError(f"marginals must have the same total mass, got {float(a.sum())} and {float(b.sum())}")
    log_a, log_b = torch.log(a), torch.log(b)
    scaled = -cost / reg  # (n, m)
    f = torch.zeros(n, dtype=cost.dtype, device=cost.device)
    g = torch.zeros(m, dtype=cost.dtype, device=cost.device)
    row_lse = torch.logsumexp(scaled, dim=1)
    err, it = float("inf"), 0
    for it in range(1, max_iter + 1):
        f = reg * (log_a - row_lse)
        g = reg * (log_b - torch.logsumexp(scaled + f[:, None] / reg, dim=0))
        # the row sums of the current plan, reused by the next f update: two passes an iteration
        row_lse = torch.logsumexp(scaled + g[None, :] / reg, dim=1)
        err = float((torch.exp(f / reg + row_lse) - a).abs().sum())
        if err < tol:
            break
    plan = torch.exp((f[:, None] + g[None, :] - cost) / reg)
    if log:
        return plan, {"iterations": it, "err": err, "converged": err < tol, "f": f, "g": g}
    return plan
