"""Batch-norm layers on zoo's kernels, drop-in for torch's.

They subclass torch's classes, so constructor arguments, parameters, buffers,
state_dict keys (``num_batches_tracked`` included), ``reset_parameters`` and
input-rank checks are torch's own; only the computation is ours. The forward
mirrors ``torch.nn.modules.batchnorm._BatchNorm.forward``: momentum, the
cumulative average for ``momentum=None``, and ``track_running_stats=False``.

``BatchNormReLU1d`` / ``BatchNormReLU2d`` are the same layers followed by
ReLU, computed in one pass (:func:`zoo.ops.batch_norm_relu`): same
constructor, parameters and state_dict keys as the batch-norm layer alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.ops.batch_norm import batch_norm, batch_norm_relu


class _ZooBatchNorm:
    """Mixin holding the forward shared by the 1-D, 2-D and synchronized layers."""

    fused_relu = False  # True in the BatchNormReLU layers: ReLU applied to the output in the same pass

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input`` with batch statistics in training, running statistics in eval."""
        self._check_input_dim(input)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        # Buffers are updated only when they are in use, as in torch.
        track = not self.training or self.track_running_stats
        return self._normalize(
            input,
            self.running_mean if track else None,
            self.running_var if track else None,
            use_batch_stats,
            momentum,
        )

    def _normalize(self, input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                   use_batch_stats: bool, momentum: float) -> Tensor:
        # The computation; the synchronized layer replaces it in training.
        function = batch_norm_relu if self.fused_relu else batch_norm
        return function(input, running_mean, running_var, self.weight, self.bias, use_batch_stats, momentum, self.eps)


class BatchNorm1d(_ZooBatchNorm, torch.nn.BatchNorm1d):
    """Drop-in ``torch.nn.BatchNorm1d`` over (N, C) or (N, C, L) input, computed by zoo's kernels."""


class BatchNorm2d(_ZooBatchNorm, torch.nn.BatchNorm2d):
    """Drop-in ``torch.nn.BatchNorm2d`` over (N, C, H, W) input (contiguous or channels-last), computed by zoo's kernels."""


class BatchNormReLU1d(BatchNorm1d):
    """``BatchNorm1d`` then ``ReLU`` in one pass: torch's ``nn.Sequential(nn.BatchNorm1d(...), nn.ReLU())``, one layer."""

    fused_relu = True


class BatchNormReLU2d(BatchNorm2d):
    """``BatchNorm2d`` then ``ReLU`` in one pass: torch's ``nn.Sequential(nn.BatchNorm2d(...), nn.ReLU())``, one layer."""

    fused_relu = True
