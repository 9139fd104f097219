"""MIOT losses: prototype-based contrastive learning (PBCL) and cross prediction alignment (CPAL).

Tensors in, tensors out; labels -1 (outliers, or clusters without a match) are ignored.
"""
import torch
import torch.nn.functional as F

from fastreid_ext.matching import CrossModalMatches


def prototype_contrast(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """PBCL term: mean over valid samples of -log softmax(f·M / τ)[target].

    Args:
        logits: (B, K) similarities f·M_k.
        targets: (B,) prototype index per sample, -1 to ignore.
    """
    valid = targets >= 0
    if not bool(valid.any()):
        return logits.sum() * 0.0  # keeps the graph; contributes nothing
    return F.cross_entropy(logits[valid] / temperature, targets[valid])


def transfer_matrix_from_plan(plan: torch.Tensor) -> torch.Tensor:
    """(K_own, K_other) row-stochastic map: the OT plan with each row normalised to 1."""
    return plan / plan.sum(dim=1, keepdim=True).clamp_min(1e-12)


def transfer_matrix_from_matches(own_to_other: torch.Tensor, num_other: int) -> torch.Tensor:
    """(K_own, K_other) one-hot rows from hard matches (unmatched rows are all zero)."""
    transfer = torch.zeros(len(own_to_other), num_other, device=own_to_other.device)
    matched = own_to_other >= 0
    transfer[matched.nonzero().squeeze(1), own_to_other[matched]] = 1.0
    return transfer


CPAL_DIRECTIONS = ("symmetric", "to_cross")


def cross_prediction_alignment(own_logits: torch.Tensor, other_logits: torch.Tensor, transfer: torch.Tensor,
                               targets: torch.Tensor, temperature: float, eps: float = 1e-8,
                               direction: str = "symmetric") -> torch.Tensor:
    """CPAL over the matched clusters between the own-modality prediction mapped to the other
    modality, p_map = softmax(f·M_own/τ) T, and the other-modality prediction
    p_other = softmax(f·M_other/τ), averaged over the samples that take part:

    - ``symmetric``: 0.5 [KL(sg(p_map) || p_other) + KL(sg(p_other) || p_map)], each direction
      with the other side detached (both predictions are trained);
    - ``to_cross``: KL(sg(p_map) || p_other): only the cross-modality prediction is trained,
      towards the own-modality one (the purer side teaches).

    Only matched clusters take part: own clusters whose row of T is non-zero (a dropped or
    missing match has a zero row), other clusters that some matched row reaches. The own
    prediction is a softmax over the matched own clusters, the other prediction over the
    reached other clusters, and only samples whose own cluster is matched count.

    Args:
        own_logits: (B, K_own); other_logits: (B, K_other); transfer: (K_own, K_other),
            rows of matched clusters summing to 1, rows of unmatched ones zero.
        targets: (B,) each sample's own cluster, -1 for outliers.
    """
    if direction not in CPAL_DIRECTIONS:
        raise ValueError(f"CPAL direction must be one of {CPAL_DIRECTIONS}, got {direction!r}")
    matched = transfer.sum(dim=1) > 0  # (K_own,)
    valid = (targets >= 0) & matched[targets.clamp_min(0)]
    if not bool(valid.any()):
        return own_logits.sum() * 0.0
    reached = transfer[matched].sum(dim=0) > 0  # (K_other,)
    transfer = transfer[matched][:, reached].to(own_logits.dtype)
    p_mapped = F.softmax(own_logits[valid][:, matched] / temperature, dim=1) @ transfer
    p_mapped = p_mapped / p_mapped.sum(dim=1, keepdim=True).clamp_min(eps)
    log_p_other = F.log_softmax(other_logits[valid][:, reached] / temperature, dim=1)
    log_p_mapped = torch.log(p_mapped.clamp_min(eps))
    p_other = log_p_other.exp()
    kl_to_other = (p_mapped.detach() * (torch.log(p_mapped.detach().clamp_min(eps)) - log_p_other)).sum(1)
    if direction == "to_cross":
        return kl_to_other.mean()
    kl_to_mapped = (p_other.detach() * (log_p_other.detach() - log_p_mapped)).sum(1)
    return 0.5 * (kl_to_other + kl_to_mapped).mean()


def transfer_maps(matches: CrossModalMatches, num_visible: int, num_infrared: int, mode: str):
    """CPAL transfer maps (Kv, Kr) and (Kr, Kv) from a matcher's output: the row-normalised plan
    ("plan", when the matcher has one) or the matches ("matches"); either way the rows of
    clusters without a match (dropped by the threshold, or left over by a one-to-one matcher)
    are zero, so CPAL leaves them out."""
    if mode == "plan" and matches.plan is not None:
        plan = matches.plan.float()
        return (transfer_matrix_from_plan(plan) * (matches.a_to_b >= 0).float()[:, None],
                transfer_matrix_from_plan(plan.t()) * (matches.b_to_a >= 0).float()[:, None])
    return (transfer_matrix_from_matches(matches.a_to_b, num_infrared),
            transfer_matrix_from_matches(matches.b_to_a, num_visible))
