"""Cross-modality matching of cluster prototypes (OT, Hungarian, PGM's two-round Hungarian),
and the registry of matchers.

A matcher is a function ``(protos_a, protos_b, *, option=default, ...) -> CrossModalMatches``
registered in ``MATCHER_REGISTRY``; ``match_prototypes(..., method=NAME)`` calls it. Its keyword
parameters are the options it takes (:func:`matcher_options`): an option it does not take is an
error, never ignored. Another project adds its own with ``@MATCHER_REGISTRY.register()`` and
selects it by name in its config.
"""
import inspect
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from fastreid.utils.registry import Registry
from scipy.optimize import linear_sum_assignment

from ..utils import registered_names
from .sinkhorn import sinkhorn

MATCHER_REGISTRY = Registry("MATCHER")
MATCHER_REGISTRY.__doc__ = "Cross-modality prototype matchers, selected by name from a project's config."


@dataclass
class CrossModalMatches:
    """Matches between prototype sets A (size Ka) and B (size Kb), both directions.

    a_to_b[i]: index in B matched to A's cluster i, or -1 when unmatched; b_to_a likewise.
    a_confidence[i], b_confidence[j]: confidence of each match in [0, 1] (0 when unmatched).
    plan: (Ka, Kb) transport plan when the matcher has one (rows sum to 1/Ka, columns 1/Kb).
    iterations, marginal_error: the iterations and the final L1 marginal error of an iterative
    solver (the plan's), when the matcher has one.
    a_candidates, b_candidates: each cluster's partner before the selection (threshold, mutual
    check) dropped some, -1 where the matcher found none; for diagnostics of what was dropped.
    """

    a_to_b: torch.Tensor
    b_to_a: torch.Tensor
    a_confidence: torch.Tensor
    b_confidence: torch.Tensor
    plan: Optional[torch.Tensor] = None
    iterations: Optional[int] = None
    marginal_error: Optional[float] = None
    a_candidates: Optional[torch.Tensor] = None
    b_candidates: Optional[torch.Tensor] = None

    @property
    def num_matched_a(self) -> int:
        return int((self.a_to_b >= 0).sum())

    @property
    def num_matched_b(self) -> int:
        return int((self.b_to_a >= 0).sum())


def prototype_cost(protos_a: torch.Tensor, protos_b: torch.Tensor) -> torch.Tensor:
    """C_ij = 1 - cos(a_i, b_j), after validating the two prototype sets."""
    for name, protos in (("protos_a", protos_a), ("protos_b", protos_b)):
        if protos.dim() != 2 or protos.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty (K, D) matrix, got shape {tuple(protos.shape)}")
        if not torch.isfinite(protos).all():
            raise ValueError(f"{name} contains NaN or inf")
    if protos_a.shape[1] != protos_b.shape[1]:
        raise ValueError(f"prototype dimensions differ: {protos_a.shape[1]} vs {protos_b.shape[1]}")
    return 1.0 - F.normalize(protos_a, dim=1) @ F.normalize(protos_b, dim=1).t()


def select_matches(a_to_b: torch.Tensor, a_conf: torch.Tensor, b_to_a: torch.Tensor, b_conf: torch.Tensor,
                   threshold: float = 0.0, mutual: bool = False, **scalars) -> CrossModalMatches:
    """Keep the reliable matches: a match whose confidence is at least ``threshold``, and with
    ``mutual`` only pairs whose two directions agree (i -> j and j -> i), each direction above
    the threshold; a dropped match becomes -1 with confidence 0, its cluster keeps its
    intra-modality term only. The partners before selection are kept as the candidates.

    Args:
        a_to_b, a_conf: (Ka,) partner in B of each cluster of A (-1: none) and its confidence.
        b_to_a, b_conf: (Kb,) likewise from B.
        scalars: ``plan``, ``iterations``, ``marginal_error`` passed on to the result.
    """
    keep_a, keep_b = (a_to_b >= 0) & (a_conf >= threshold), (b_to_a >= 0) & (b_conf >= threshold)
    if mutual:
        rows_a = torch.arange(len(a_to_b), device=a_to_b.device)
        rows_b = torch.arange(len(b_to_a), device=b_to_a.device)
        partner_a, partner_b = a_to_b.clamp_min(0), b_to_a.clamp_min(0)
        keep_a, keep_b = (keep_a & (b_to_a[partner_a] == rows_a) & keep_b[partner_a],
                          keep_b & (a_to_b[partner_b] == rows_b) & keep_a[partner_b])
    unmatched_a, unmatched_b = torch.full_like(a_to_b, -1), torch.full_like(b_to_a, -1)
    return CrossModalMatches(torch.where(keep_a, a_to_b, unmatched_a), torch.where(keep_b, b_to_a, unmatched_b),
                             torch.where(keep_a, a_conf, torch.zeros_like(a_conf)),
                             torch.where(keep_b, b_conf, torch.zeros_like(b_conf)),
                             a_candidates=a_to_b.clone(), b_candidates=b_to_a.clone(), **scalars)


@MATCHER_REGISTRY.register()
def ot(protos_a: torch.Tensor, protos_b: torch.Tensor, reg: float = 0.05, max_iter: int = 10000,
       tol: float = 1e-6, threshold: float = 0.0, mutual: bool = False) -> CrossModalMatches:
    """OTPA: entropic OT with uniform marginals between the prototypes (every cluster gets
    mass, so unequal Ka != Kb is handled: several clusters of the larger side may map to one
    of the smaller side). Cluster i of A goes to argmax_j Q_ij with confidence Q_ij / Σ_j Q_ij
    (the share of its row's mass sent there: Ka·Q_ij at convergence), cluster j of B to
    argmax_i Q_ij with confidence Q_ij / Σ_i Q_ij; the same scale in [0, 1] for both directions
    and any Ka, Kb. :func:`select_matches` keeps those above ``threshold`` (and, with
    ``mutual``, the pairs whose directions agree). An unconverged Sinkhorn warns
    (:class:`SinkhornConvergenceWarning`); its iterations and marginal error are returned."""
    cost = prototype_cost(protos_a, protos_b).double()
    plan, log = sinkhorn(cost, reg=reg, max_iter=max_iter, tol=tol, log=True)
    a_conf, a_to_b = (plan / plan.sum(dim=1, keepdim=True).clamp_min(1e-300)).max(dim=1)
    b_conf, b_to_a = (plan / plan.sum(dim=0, keepdim=True).clamp_min(1e-300)).max(dim=0)
    return select_matches(a_to_b, a_conf.to(protos_a.dtype), b_to_a, b_conf.to(protos_a.dtype), threshold, mutual,
                          plan=plan.to(protos_a.dtype), iterations=log["iterations"], marginal_error=log["err"])


@MATCHER_REGISTRY.register()
def hungarian(protos_a: torch.Tensor, protos_b: torch.Tensor, threshold: float = 0.0,
              mutual: bool = False) -> CrossModalMatches:
    """One-to-one matching minimising the total cost (``scipy.optimize.linear_sum_assignment``),
    the baseline of PGM-style methods: the surplus of the larger side stays unmatched. The
    confidence of a match is the cosine similarity of its prototypes (clipped to [0, 1]);
    one-to-one matches are always mutual."""
    cost = prototype_cost(protos_a, protos_b)
    rows, cols = linear_sum_assignment(cost.detach().cpu().double().numpy())
    device = protos_a.device
    ka, kb = cost.shape
    a_to_b = torch.full((ka,), -1, dtype=torch.long, device=device)
    b_to_a = torch.full((kb,), -1, dtype=torch.long, device=device)
    a_conf = torch.zeros(ka, dtype=protos_a.dtype, device=device)
    b_conf = torch.zeros(kb, dtype=protos_a.dtype, device=device)
    rows_t, cols_t = torch.as_tensor(rows, device=device), torch.as_tensor(cols, device=device)
    similarity = (1.0 - cost[rows_t, cols_t]).clamp(0.0, 1.0).to(protos_a.dtype)
    a_to_b[rows_t], b_to_a[cols_t] = cols_t, rows_t
    a_conf[rows_t], b_conf[cols_t] = similarity, similarity
    return select_matches(a_to_b, a_conf, b_to_a, b_conf, threshold, mutual)


@MATCHER_REGISTRY.register()
def two_round_hungarian(protos_a: torch.Tensor, protos_b: torch.Tensor, threshold: float = 0.0,
                        mutual: bool = False) -> CrossModalMatches:
    """PGM's matching (Wu & Ye, CVPR 2023, "progressive graph matching"): a one-to-one Hungarian
    round on the cost exp(−cos), then further Hungarian rounds between the larger side's
    still unmatched clusters and all of the smaller side, until every cluster of the larger
    side has a partner (two rounds when it is at most twice as large). The smaller side keeps
    its first-round partner. Confidences are the cosine similarities (clipped to [0, 1]);
    ``mutual`` keeps the first round's one-to-one pairs only."""
    similarity = 1.0 - prototype_cost(protos_a, protos_b)
    cost = torch.exp(-similarity).detach().cpu().double().numpy()
    swap = cost.shape[0] < cost.shape[1]  # work with the larger side as rows
    if swap:
        cost, similarity = cost.T, similarity.t()
    larger, smaller = cost.shape
    device = protos_a.device
    to_smaller = torch.full((larger,), -1, dtype=torch.long, device=device)
    to_larger = torch.full((smaller,), -1, dtype=torch.long, device=device)
    rows, cols = linear_sum_assignment(cost)
    to_smaller[torch.as_tensor(rows, device=device)] = torch.as_tensor(cols, device=device)
    to_larger[torch.as_tensor(cols, device=device)] = torch.as_tensor(rows, device=device)
    while bool((to_smaller < 0).any()):
        left = (to_smaller < 0).nonzero().squeeze(1).cpu().numpy()
        rows, cols = linear_sum_assignment(cost[left])
        to_smaller[torch.as_tensor(left[rows], device=device)] = torch.as_tensor(cols, device=device)
    larger_conf = similarity[torch.arange(larger, device=device), to_smaller].clamp(0.0, 1.0).to(protos_a.dtype)
    smaller_conf = torch.zeros(smaller, dtype=protos_a.dtype, device=device)
    partnered = (to_larger >= 0).nonzero().squeeze(1)
    smaller_conf[partnered] = similarity[to_larger[partnered], partnered].clamp(0.0, 1.0).to(protos_a.dtype)
    a_to_b, a_conf, b_to_a, b_conf = to_smaller, larger_conf, to_larger, smaller_conf
    if swap:
        a_to_b, a_conf, b_to_a, b_conf = to_larger, smaller_conf, to_smaller, larger_conf
    return select_matches(a_to_b, a_conf, b_to_a, b_conf, threshold, mutual)


def _matcher(method: str) -> Callable[..., CrossModalMatches]:
    try:
        return MATCHER_REGISTRY.get(method)
    except KeyError as err:
        raise KeyError(f"unknown matcher {method!r}; registered: {registered_names(MATCHER_REGISTRY)}") from err


def matcher_options(method: str) -> Tuple[str, ...]:
    """The options the registered matcher ``method`` takes: its parameters after the two
    prototype sets. A matcher with ``**kwargs`` states none and is refused."""
    parameters = list(inspect.signature(_matcher(method)).parameters.values())[2:]
    if any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in parameters):
        raise TypeError(f"matcher {method!r} takes *args/**kwargs: name its options as keyword parameters, so "
                        f"that a misspelt or foreign option is an error")
    return tuple(p.name for p in parameters)


def match_prototypes(protos_a: torch.Tensor, protos_b: torch.Tensor, method: str = "ot",
                     **options) -> CrossModalMatches:
    """Cross-modality matches between two prototype sets with the registered matcher ``method``.

    Args:
        protos_a: (Ka, D) prototypes of modality A (e.g. visible cluster means).
        protos_b: (Kb, D) prototypes of modality B; both are L2-normalised here.
        method: a name in ``MATCHER_REGISTRY`` ("ot", "hungarian", or one registered elsewhere).
        **options: passed to the matcher; each must be one it takes (:func:`matcher_options`:
            ``reg``, ``max_iter``, ``tol``, ``threshold``, ``mutual`` for "ot").

    Raises:
        KeyError: ``method`` is not registered.
        TypeError: an option the matcher does not take, named with the ones it takes.
    """
    accepted = matcher_options(method)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"matcher {method!r} takes no option {', '.join(map(repr, unknown))}; it takes "
                        f"{', '.join(accepted) or 'none'}")
    return _matcher(method)(torch.as_tensor(protos_a), torch.as_tensor(protos_b), **options)
