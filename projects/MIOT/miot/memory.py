"""Per-modality prototype memories with momentum update (in the spirit of ClusterContrast's cm.py)."""
import torch
import torch.nn.functional as F
from torch import autograd, nn


class MemoryLookup(autograd.Function):
    """Forward: similarities of the features to the memory. Backward: the gradient w.r.t. the
    features, then the momentum update of the rows named by ``targets`` (-1: no update),
    one sample after the other: m <- μ m + (1 - μ) f, m <- m / ||m||."""

    @staticmethod
    def forward(ctx, inputs, targets, features, momentum):
        ctx.features, ctx.momentum = features, momentum
        # the gradient uses the memory as it was in the forward pass, whatever updates run first
        ctx.save_for_backward(inputs, targets, features.clone())
        return inputs.mm(features.t().to(inputs.dtype))

    @staticmethod
    def backward(ctx, grad_outputs):
        inputs, targets, snapshot = ctx.saved_tensors
        grad_inputs = grad_outputs.mm(snapshot.to(grad_outputs.dtype)) if ctx.needs_input_grad[0] else None
        with torch.no_grad():
            for x, y in zip(inputs, targets.tolist()):
                if y >= 0:
                    row = ctx.momentum * ctx.features[y] + (1.0 - ctx.momentum) * x.to(ctx.features.dtype)
                    ctx.features[y] = row / row.norm().clamp_min(1e-12)
        return grad_inputs, None, None, None


class PrototypeMemory(nn.Module):
    """K L2-normalised prototypes of one modality. Not part of the model's state_dict: the
    training loop re-initialises it every epoch and checkpoints it itself."""

    def __init__(self, num_features: int, momentum: float = 0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("features", torch.zeros(0, num_features), persistent=False)

    @property
    def num_prototypes(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def reset(self, prototypes: torch.Tensor) -> None:
        """Replace the memory by ``prototypes`` (K, D), L2-normalised."""
        self.features = F.normalize(prototypes.to(self.features.device, torch.float32), dim=1).contiguous()

    def forward(self, inputs: torch.Tensor, update_targets: torch.Tensor) -> torch.Tensor:
        """(B, K) similarities of ``inputs`` (B, D) to the prototypes; after backward, rows
        ``update_targets`` (B,) move towards the inputs (-1: leave the memory alone)."""
        return MemoryLookup.apply(inputs, update_targets, self.features, self.momentum)
