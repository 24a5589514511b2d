"""SyncBatchNorm: batch norm whose training statistics cover every process's batch, on zoo's kernels.

Like ``torch.nn.SyncBatchNorm`` (same constructor, parameters, buffers and
state_dict keys, so a checkpoint loads into the plain layers and back), but it
also runs on the CPU (gloo) and computes with zoo's kernels
(:func:`zoo.ops.sync_batch_norm`). Outside training, or without an initialised
process group of two or more processes, it is the plain zoo batch norm.

It derives from torch's ``_BatchNorm``, not from ``torch.nn.SyncBatchNorm``:
DistributedDataParallel refuses torch's class in a CPU module.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from zoo.nn.batch_norm import _ZooBatchNorm
from zoo.ops.activation import torch_activation
from zoo.ops.sync_batch_norm import sync_batch_norm

__all__ = ["SyncBatchNorm", "SyncBatchNormReLU"]


class SyncBatchNorm(_ZooBatchNorm, torch.nn.modules.batchnorm._BatchNorm):
    """``torch.nn.SyncBatchNorm`` on zoo's kernels, for (N, C, ...) input on the CPU or CUDA.

    ``process_group`` is the group whose batches are normalised together (None: the whole world).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group: Any = None, device: Any = None, dtype: Any = None,
                 *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def _normalize(self, input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                   use_batch_stats: bool, momentum: float) -> Tensor:
        if self.training and use_batch_stats and _world_size(self.process_group) > 1:
            y = sync_batch_norm(input, running_mean, running_var, self.weight, self.bias, momentum, self.eps,
                                self.process_group)
            # The synchronized kernels have no fused activation: torch's own op after them.
            return torch_activation(y, self.activation, self.activation_alpha)
        return super()._normalize(input, running_mean, running_var, use_batch_stats, momentum)

    @classmethod
    def convert_sync_batchnorm(cls, module: nn.Module, process_group: Any = None) -> nn.Module:
        """``module`` with every batch-norm layer (zoo's or torch's) replaced by a :class:`SyncBatchNorm`
        sharing its parameters and buffers, as ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` does;
        zoo's BatchNormReLU layers become :class:`SyncBatchNormReLU`, and the LeakyReLU and ELU ones keep
        their activation too."""
        converted = module
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
            activation = getattr(module, "activation", "none")
            target = SyncBatchNormReLU if activation == "relu" else SyncBatchNorm
            converted = target(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats, process_group, bias=module.bias is not None)
            if activation not in ("none", "relu"):
                converted.activation, converted.activation_alpha = activation, module.activation_alpha
            if module.affine:
                converted.weight, converted.bias = module.weight, module.bias
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
            converted.training = module.training
        for name, child in module.named_children():
            converted.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return converted


class SyncBatchNormReLU(SyncBatchNorm):
    """:class:`SyncBatchNorm` then ``ReLU``: what :class:`zoo.nn.BatchNormReLU2d` (or 1d) becomes for distributed
    training. Outside synchronized training ReLU runs in batch norm's pass; in it, after (torch's ReLU)."""

    activation = "relu"


def _world_size(group: Any) -> int:
    """Processes in ``group`` (the world when None), or 1 without an initialised process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)
