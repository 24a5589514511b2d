"""Batch-norm layers on zoo's kernels, drop-in for torch's.

They subclass torch's classes, so constructor arguments, parameters, buffers,
state_dict keys (``num_batches_tracked`` included), ``reset_parameters`` and
input-rank checks are torch's own; only the computation is ours. The forward
mirrors ``torch.nn.modules.batchnorm._BatchNorm.forward``: momentum, the
cumulative average for ``momentum=None``, and ``track_running_stats=False``.

``BatchNormReLU1d`` / ``BatchNormReLU2d``, ``BatchNormLeakyReLU1d`` / ``2d`` and
``BatchNormELU1d`` / ``2d`` are the same layers followed by that activation,
computed in one pass (:func:`zoo.ops.batch_norm_activation`): same constructor
(plus the activation's own ``negative_slope`` / ``alpha``), parameters and
state_dict keys as the batch-norm layer alone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from zoo.ops.batch_norm import batch_norm, batch_norm_activation


class _ZooBatchNorm:
    """Mixin holding the forward shared by the 1-D, 2-D and synchronized layers."""

    # The activation applied to the output in the same pass (zoo.ops.FUSED_ACTIVATIONS) and its parameter.
    activation = "none"
    activation_alpha = 0.0

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
        args = (input, running_mean, running_var, self.weight, self.bias, use_batch_stats, momentum, self.eps)
        if self.activation == "none":
            return batch_norm(*args)
        return batch_norm_activation(*args, activation=self.activation, alpha=self.activation_alpha)


class BatchNorm1d(_ZooBatchNorm, torch.nn.BatchNorm1d):
    """Drop-in ``torch.nn.BatchNorm1d`` over (N, C) or (N, C, L) input, computed by zoo's kernels."""


class BatchNorm2d(_ZooBatchNorm, torch.nn.BatchNorm2d):
    """Drop-in ``torch.nn.BatchNorm2d`` over (N, C, H, W) input (contiguous or channels-last), computed by zoo's kernels."""


class BatchNormReLU1d(BatchNorm1d):
    """``BatchNorm1d`` then ``ReLU`` in one pass: torch's ``nn.Sequential(nn.BatchNorm1d(...), nn.ReLU())``, one layer."""

    activation = "relu"


class BatchNormReLU2d(BatchNorm2d):
    """``BatchNorm2d`` then ``ReLU`` in one pass: torch's ``nn.Sequential(nn.BatchNorm2d(...), nn.ReLU())``, one layer."""

    activation = "relu"


class _LeakyReLUAfter:
    """Mixin: the batch-norm layer of the later base, then LeakyReLU of ``negative_slope`` in the same pass."""

    activation = "leaky_relu"

    def __init__(self, num_features: int, *args: Any, negative_slope: float = 0.01, **kwargs: Any) -> None:
        super().__init__(num_features, *args, **kwargs)
        self.negative_slope = negative_slope

    @property
    def activation_alpha(self) -> float:
        """LeakyReLU's negative slope."""
        return self.negative_slope

    def extra_repr(self) -> str:
        """torch's batch-norm summary and the slope."""
        return f"{super().extra_repr()}, negative_slope={self.negative_slope}"


class _ELUAfter:
    """Mixin: the batch-norm layer of the later base, then ELU of ``alpha`` in the same pass."""

    activation = "elu"

    def __init__(self, num_features: int, *args: Any, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(num_features, *args, **kwargs)
        self.alpha = alpha

    @property
    def activation_alpha(self) -> float:
        """ELU's alpha."""
        return self.alpha

    def extra_repr(self) -> str:
        """torch's batch-norm summary and alpha."""
        return f"{super().extra_repr()}, alpha={self.alpha}"


class BatchNormLeakyReLU1d(_LeakyReLUAfter, BatchNorm1d):
    """``BatchNorm1d`` then ``LeakyReLU(negative_slope)`` in one pass (``negative_slope`` keyword-only, default 0.01)."""


class BatchNormLeakyReLU2d(_LeakyReLUAfter, BatchNorm2d):
    """``BatchNorm2d`` then ``LeakyReLU(negative_slope)`` in one pass (``negative_slope`` keyword-only, default 0.01)."""


class BatchNormELU1d(_ELUAfter, BatchNorm1d):
    """``BatchNorm1d`` then ``ELU(alpha)`` in one pass (``alpha`` keyword-only, default 1.0)."""


class BatchNormELU2d(_ELUAfter, BatchNorm2d):
    """``BatchNorm2d`` then ``ELU(alpha)`` in one pass (``alpha`` keyword-only, default 1.0)."""
