"""Synchronized batch norm: training batch norm whose statistics cover the batches of every process in a group.

The maths is apex's syncbn and torch's ``torch.nn.modules._functions.SyncBatchNorm``;
the work on the data runs on zoo's kernels and only per-channel vectors cross
processes (torch.distributed collectives, gloo on the CPU, nccl on CUDA):

- forward: each process summarises its batch with ``zoo::batch_norm_stats``
  (count, mean, M2 per channel); the summaries are all-gathered in float64 and
  merged with Chan et al.'s formula, which unequal counts (a short last batch,
  an empty share) do not bias; ``zoo::batch_norm_eval`` then normalises with the
  merged mean and biased variance. Every process updates its running statistics
  from the same merged values, so they stay identical everywhere.
- backward: each process reduces ``sum(dy)`` and ``sum(dy * (x - mean))`` with
  ``zoo::batch_norm_backward_reduce``; their float64 all-reduce gives
  ``zoo::batch_norm_backward_elemt`` the whole batch's sums for dx. The weight
  and bias gradients stay local, as torch's do: DistributedDataParallel sums them
  across processes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from zoo.ops.batch_norm import (
    batch_norm_backward_elemt,
    batch_norm_backward_reduce,
    batch_norm_eval,
    batch_norm_stats,
    supported_layout,
)
from zoo.ops.checks import check_tensors

__all__ = ["merge_statistics", "sync_batch_norm"]

_OP = "zoo.ops.sync_batch_norm"


def merge_statistics(counts: Tensor, means: Tensor, m2s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Chan et al.'s merge of per-process (count, mean, M2) summaries: rows are processes, columns channels.

    ``counts`` is (P, 1), ``means`` and ``m2s`` (P, C). Returns the total count (1), mean (C) and M2 (C).
    A process with count 0 contributes nothing.
    """
    total = counts.sum(0)
    mean = (counts * means).sum(0) / total.clamp(min=1)
    m2 = m2s.sum(0) + (counts * (means - mean) ** 2).sum(0)
    return total, mean, m2


def _check_running_buffers(op: str, x: Tensor, running_mean: Tensor | None, running_var: Tensor | None) -> None:
    """Raise ValueError unless each running buffer given has shape (C,) and x's dtype and device.

    Synchronized batch norm updates them here, from the merged statistics (zoo::batch_norm_train, which
    checks and updates them in its kernel, sees only this process's batch).
    """
    for name, buffer in (("running_mean", running_mean), ("running_var", running_var)):
        if buffer is not None and (buffer.shape != (x.shape[1],) or buffer.dtype != x.dtype
                                   or buffer.device != x.device):
            raise ValueError(
                f"{op}: {name} must have shape ({x.shape[1]},), dtype {x.dtype} and device {x.device} like the "
                f"input's channels, got shape {tuple(buffer.shape)}, {buffer.dtype} on {buffer.device}"
            )


def _update_running_stats(running_mean: Tensor | None, running_var: Tensor | None, mean: Tensor, var_unbiased: Tensor,
                         momentum: float) -> None:
    """``running = (1 - momentum) * running + momentum * batch`` for each buffer given, in place, outside autograd."""
    with torch.no_grad():  # one fused op each
        if running_mean is not None:
            running_mean.lerp_(mean, momentum)
        if running_var is not None:
            running_var.lerp_(var_unbiased, momentum)


class _SyncBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                running_var: Tensor | None, eps: float, momentum: float, group: Any) -> Tensor:
        channels = x.shape[1]
        local_mean, local_m2 = batch_norm_stats(x)
        count = x.numel() // channels
        summary = torch.cat([local_mean.new_full((1,), count, dtype=torch.float64), local_mean.double(),
                             local_m2.double()])
        gathered = [torch.empty_like(summary) for _ in range(dist.get_world_size(group))]
        dist.all_gather(gathered, summary, group=group)
        table = torch.stack(gathered)
        total, mean, m2 = merge_statistics(table[:, :1], table[:, 1:channels + 1], table[:, channels + 1:])
        total_count = int(total.item())
        if total_count <= 1:  # every process sees the same total, so every process refuses
            raise ValueError(f"{_OP}: expected more than 1 value per channel when training, got {total_count} "
                             f"across {len(gathered)} processes")
        var = m2 / total_count
        _update_running_stats(running_mean, running_var, mean.to(x.dtype), (m2 / (total_count - 1)).to(x.dtype),
                             momentum)
        mean, var = mean.to(x.dtype), var.to(x.dtype)
        y = batch_norm_eval(x, weight, bias, mean, var, eps)
        invstd = (var.double() + eps).rsqrt().to(x.dtype)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.has_bias = bias is not None
        ctx.total_count, ctx.group = total_count, group
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable  # no second derivative: create_graph through it raises, as torch's
    def backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, mean, invstd = ctx.saved_tensors
        channels = x.shape[1]
        sum_dy, sum_dy_xmu = batch_norm_backward_reduce(grad_y, x, mean)
        # Local parameter gradients: DistributedDataParallel sums them across processes.
        grad_weight = sum_dy_xmu * invstd if weight is not None and ctx.needs_input_grad[1] else None
        grad_bias = sum_dy if ctx.has_bias and ctx.needs_input_grad[2] else None
        grad_x = None
        if ctx.needs_input_grad[0]:  # the same on every process (the same model), so all join the all-reduce
            sums = torch.cat([sum_dy, sum_dy_xmu]).double()
            dist.all_reduce(sums, group=ctx.group)
            sums = sums.to(x.dtype)
            grad_x = batch_norm_backward_elemt(grad_y, x, weight, mean, invstd, sums[:channels], sums[channels:],
                                               ctx.total_count)
        return grad_x, grad_weight, grad_bias, None, None, None, None, None


def sync_batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    momentum: float = 0.1,
    eps: float = 1e-5,
    group: Any = None,
) -> Tensor:
    """Training batch norm over the batches of every process in ``group`` (default: the whole world).

    Every process of the group must call it, in the same order, with the same
    channel count; their batch sizes may differ (one may even be empty). The
    running buffers, when given, are updated in place from the merged statistics.
    Needs an initialised ``torch.distributed`` process group; bad shapes or values
    raise ValueError, bad dtypes TypeError, as :func:`zoo.ops.batch_norm` does.
    """
    check_tensors(_OP, input=x, weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(f"{_OP}: torch.distributed is not initialised (call init_process_group first)")
    if x.dim() > 4:  # (N, C, D, H, W...) normalises as (N, C, D*H*W...), as torch's does
        flat = sync_batch_norm(x.reshape(x.shape[0], x.shape[1], -1), running_mean, running_var, weight, bias,
                               momentum, eps, group)
        return flat.reshape(x.shape)
    if x.dim() < 2 or x.shape[1] == 0:
        raise ValueError(f"{_OP}: expected input of shape (N, C, ...) with C >= 1, got {tuple(x.shape)}")
    _check_running_buffers(_OP, x, running_mean, running_var)
    group = group if group is not None else dist.group.WORLD
    return _SyncBatchNorm.apply(supported_layout(x), weight, bias, running_mean, running_var, eps, momentum, group)
