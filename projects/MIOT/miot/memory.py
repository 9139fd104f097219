"""Per-modality prototype memories with momentum update (in the spirit of ClusterContrast's cm.py)."""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from fastreid.utils import comm
from torch import autograd, nn


class MemoryLookup(autograd.Function):
    """Forward: similarities of the features to the memory. Backward: the gradient w.r.t. the
    features, and the (features, targets) of this step queued for the momentum update, which
    :meth:`PrototypeMemory.apply_updates` applies after the optimizer step (on every rank
    alike, so that distributed memories stay identical)."""

    @staticmethod
    def forward(ctx, inputs, targets, memory):
        ctx.memory = memory
        ctx.save_for_backward(inputs, targets)
        return inputs.mm(memory.features.t().to(inputs.dtype))

    @staticmethod
    def backward(ctx, grad_outputs):
        inputs, targets = ctx.saved_tensors
        grad_inputs = grad_outputs.mm(ctx.memory.features.to(grad_outputs.dtype)) if ctx.needs_input_grad[0] else None
        keep = targets >= 0
        if bool(keep.any()):
            ctx.memory.pending.append((inputs.detach()[keep], targets[keep]))
        return grad_inputs, None, None


class PrototypeMemory(nn.Module):
    """K L2-normalised prototypes of one modality. Not part of the model's state_dict: the
    training loop re-initialises it every epoch and checkpoints it itself."""

    def __init__(self, num_features: int, momentum: float = 0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("features", torch.zeros(0, num_features), persistent=False)
        self.pending: List[Tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def num_prototypes(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def reset(self, prototypes: torch.Tensor) -> None:
        """Replace the memory by ``prototypes`` (K, D), L2-normalised; drop queued updates."""
        self.features = F.normalize(prototypes.to(self.features.device, torch.float32), dim=1).contiguous()
        self.pending = []

    def forward(self, inputs: torch.Tensor, update_targets: torch.Tensor) -> torch.Tensor:
        """(B, K) similarities of ``inputs`` (B, D) to the prototypes; backward queues a
        momentum update of rows ``update_targets`` (B,) (-1: none) for :meth:`apply_updates`."""
        return MemoryLookup.apply(inputs, update_targets, self)

    @torch.no_grad()
    def apply_updates(self) -> None:
        """m <- μ m + (1 - μ) f, m <- m / ||m||, one queued sample after the other; with several
        processes, every rank applies every rank's samples in rank order.

        Vectorised: the updates of different prototypes are independent, so the t-th update of
        every prototype is applied at once, for t = 1, 2, ... (as many rounds as the most
        updated prototype has samples, K in a P x K batch, instead of one per sample); each
        prototype still sees its own samples in their queued order.
        """
        pending, self.pending = self.pending, []
        if comm.get_world_size() > 1:
            local = [(x.cpu(), y.cpu()) for x, y in pending]
            pending = [item for rank_items in comm.all_gather(local) for item in rank_items]
        if not pending:
            return
        inputs = torch.cat([x for x, _ in pending]).to(self.features.device, self.features.dtype)  # (N, D)
        targets = torch.cat([y for _, y in pending]).to(self.features.device)  # (N,)
        order = torch.sort(targets, stable=True).indices  # queued order within each prototype
        sorted_targets = targets[order]
        starts = torch.searchsorted(sorted_targets, sorted_targets, side="left")
        rounds = torch.empty_like(targets)
        rounds[order] = torch.arange(len(targets), device=targets.device) - starts  # t-th update of its row
        for t in range(int(rounds.max()) + 1):
            chosen = rounds == t
            rows = targets[chosen]  # distinct within a round
            updated = self.momentum * self.features[rows] + (1.0 - self.momentum) * inputs[chosen]
            self.features[rows] = updated / updated.norm(dim=1, keepdim=True).clamp_min(1e-12)
