"""Batch norm whose training statistics are those of the global batch, over every process.

``torch.nn.SyncBatchNorm`` does the same on GPUs only; this one is plain torch and runs on any
device and backend (gloo on CPUs, NCCL on GPUs), so that the one code path is also the one the
CPU tests check. Its forward is ``BatchNorm`` on the concatenation of every rank's batch:
mean and (biased) variance from all-reduced sums, two passes (sum, then squared deviations)
for float32 accuracy, the running statistics updated with the unbiased variance over the
global count; gradients flow back through the all-reduces as through SyncBatchNorm's.
"""
import torch
import torch.distributed as dist
from fastreid.utils import comm
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of every rank's input is the sum of every rank's gradient."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _distributed() -> bool:
    return comm.get_world_size() > 1  # 1 when torch.distributed is unavailable or not initialised


class GlobalBatchNorm(_BatchNorm):
    """``BatchNorm{1,2,3}d`` with statistics over every process's batch in training (per rank
    only when there is one process, or in evaluation, where the running statistics are used).
    Its state dict is that of the batch norm it replaces. Every rank must call it the same
    number of times per step (a collective per call)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"GlobalBatchNorm expects (N, C, ...) input, got shape {tuple(input.shape)}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        if not (self.training and _distributed()):
            return super().forward(input)
        dims = [0] + list(range(2, input.dim()))
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = input.new_tensor([input.numel() / input.shape[1]], dtype=torch.float32)
        sums = _AllReduceSum.apply(torch.cat([input.float().sum(dims), count]))
        total = sums[-1]
        mean = sums[:-1] / total
        centred = input.float() - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / total
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - momentum).add_(momentum * mean.to(self.running_mean.dtype))
                unbiased = var * total / (total - 1).clamp_min(1)
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased.to(self.running_var.dtype))
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(input.dtype)


def convert_to_global_batch_norm(module: nn.Module) -> nn.Module:
    """``module`` with every ``BatchNorm{1,2,3}d`` (fastreid's ``BatchNorm`` too) replaced by a
    :class:`GlobalBatchNorm` holding its parameters and buffers; returns the converted module
    (a new object when ``module`` itself is a batch norm)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, (GlobalBatchNorm, nn.SyncBatchNorm)):
        converted = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                    module.track_running_stats)
        state = module.state_dict()
        if state:
            converted.to(next(iter(state.values())).device)
        converted.load_state_dict(state)
        if module.affine:  # the same parameter objects: requires_grad (frozen norms) carries over
            converted.weight, converted.bias = module.weight, module.bias
        return converted.train(module.training)
    for name, child in module.named_children():
        module.add_module(name, convert_to_global_batch_norm(child))
    return module
