"""GlobalBatchNorm on W gloo processes equals batch norm on one process with the whole batch."""
import copy
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from fastreid.layers.batch_norm import BatchNorm
from torch import nn

from fastreid_ext.modeling import GlobalBatchNorm, convert_to_global_batch_norm

SHAPES = {"2d": (8, 3, 5, 4), "1d": (8, 6)}


def make_norm(kind: str) -> nn.Module:
    torch.manual_seed(0)
    norm = BatchNorm(3) if kind == "2d" else nn.BatchNorm1d(6)
    nn.init.uniform_(norm.weight, 0.5, 1.5), nn.init.uniform_(norm.bias, -0.5, 0.5)
    return norm


def batch_and_upstream(kind: str):
    g = torch.Generator().manual_seed(1)
    x = 3.0 + 2.0 * torch.randn(SHAPES[kind], generator=g)  # an offset: the variance is not E[x^2]
    return x, torch.randn(SHAPES[kind], generator=g)  # the gradient arriving at the output


def step(norm: nn.Module, x: torch.Tensor, upstream: torch.Tensor, world: int):
    """Forward, and backward of the mean loss over this process's images; parameter gradients
    averaged over the processes, as DistributedDataParallel does."""
    x = x.clone().requires_grad_(True)
    out = norm(x)
    (out * upstream).sum().div(len(x)).backward()
    grads = [p.grad.clone() for p in (norm.weight, norm.bias)]
    if world > 1:
        for grad in grads:
            dist.all_reduce(grad)
            grad /= world
    return out.detach(), x.grad, grads, norm.running_mean.clone(), norm.running_var.clone()


def worker(rank: int, world: int, init: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    for kind in SHAPES:
        norm = convert_to_global_batch_norm(make_norm(kind)).train()
        x, upstream = batch_and_upstream(kind)
        share = len(x) // world
        mine = slice(rank * share, (rank + 1) * share)
        torch.save(step(norm, x[mine], upstream[mine], world), os.path.join(out_dir, f"{kind}_rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("global_bn")
    mp.spawn(worker, args=(2, f"file://{out / 'rendezvous'}", str(out)), nprocs=2)
    return out


@pytest.mark.parametrize("kind", list(SHAPES))
def test_two_processes_with_half_batches_equal_one_process_with_the_batch(kind, two_processes):
    x, upstream = batch_and_upstream(kind)
    out, grad_x, grads, mean, var = step(make_norm(kind).train(), x, upstream, 1)
    ranks = [torch.load(two_processes / f"{kind}_rank{r}.pt") for r in (0, 1)]
    torch.testing.assert_close(torch.cat([r[0] for r in ranks]), out, rtol=1e-5, atol=1e-5)
    # each rank's activations get the gradient of the sum of the ranks' losses (W x the mean), as with
    # SyncBatchNorm: the parameters' averaged gradients then equal one process's
    torch.testing.assert_close(torch.cat([r[1] for r in ranks]), 2 * grad_x, rtol=1e-5, atol=1e-5)
    for r in ranks:
        for got, want in zip(r[2], grads):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(r[3], mean, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(r[4], var, rtol=1e-5, atol=1e-6)


def test_conversion_keeps_parameters_buffers_and_the_state_dict():
    model = nn.Sequential(nn.Conv2d(3, 3, 1), make_norm("2d"), nn.Sequential(nn.Flatten(), nn.BatchNorm1d(60)))
    model[1].weight.requires_grad_(False)  # a frozen norm stays frozen
    model[1].running_mean.fill_(0.25)
    before, weight = model.state_dict(), model[1].weight
    converted = convert_to_global_batch_norm(model)
    assert isinstance(converted[1], GlobalBatchNorm) and isinstance(converted[2][1], GlobalBatchNorm)
    assert converted[1].weight is weight and not converted[1].weight.requires_grad
    after = converted.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def test_on_one_process_it_is_the_batch_norm_it_replaces():
    reference = make_norm("2d").train()
    converted = convert_to_global_batch_norm(copy.deepcopy(reference))
    x = torch.randn(4, 3, 5, 4)
    assert torch.equal(converted(x), reference(x))
    assert torch.equal(converted.running_var, reference.running_var)
