"""Linear layer on zoo's kernels, drop-in for ``torch.nn.Linear``."""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.ops.checks import DISPATCH_ERRORS
from zoo.ops.linear import linear, linear_op


class Linear(torch.nn.Linear):
    """Drop-in ``torch.nn.Linear`` (same arguments, parameters and state_dict keys) computed by zoo's kernels.

    On CPUs where MKL runs its slower code (AMD) the float32 products run on zoo's AVX-512 kernel,
    about twice as fast there; elsewhere the layer computes with torch's BLAS, as ``nn.Linear`` does.
    """

    def forward(self, input: Tensor) -> Tensor:
        """``input @ weight.T + bias`` for an input (*, in_features)."""
        if input.dim() == 2:  # a batch of rows, the op's own form: straight to it (half a µs a call)
            try:
                return linear_op(input, self.weight, self.bias)
            except (ValueError, *DISPATCH_ERRORS):
                pass  # anything else (a replaced bias of another shape, bad input): the functional form decides
        return linear(input, self.weight, self.bias)
