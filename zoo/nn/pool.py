"""Max-pooling layer on zoo's kernels, drop-in for ``torch.nn.MaxPool2d``."""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.ops.max_pool import max_pool2d


class MaxPool2d(torch.nn.MaxPool2d):
    """Drop-in ``torch.nn.MaxPool2d`` (same arguments and outputs, indices included) computed by zoo's kernels."""

    def forward(self, input: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """Max-pool ``input`` (N, C, H, W) or (C, H, W); also the argmax indices when ``return_indices``."""
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          ceil_mode=self.ceil_mode, return_indices=self.return_indices)
