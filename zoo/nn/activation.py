"""Activation layers on zoo's kernels, drop-in for torch's."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from zoo.ops.activation import elu


class ELU(nn.ELU):
    """Drop-in ``torch.nn.ELU`` (same constructor, ``alpha`` and ``inplace``) computed by zoo's kernel.

    torch's CPU ELU is bound by its ``expm1``; zoo's (:func:`zoo.ops.elu`) runs near memory speed,
    with values and gradients within a few ulp of torch's. ``inplace=True`` is torch's own in-place op.
    """

    def forward(self, input: Tensor) -> Tensor:
        """ELU of ``input``: ``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``."""
        if self.inplace:
            return F.elu(input, self.alpha, inplace=True)
        return elu(input, self.alpha)
