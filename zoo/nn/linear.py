"""Linear layer on zoo's kernels, drop-in for ``torch.nn.Linear``."""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.ops.linear import linear


class Linear(torch.nn.Linear):
    """Drop-in ``torch.nn.Linear`` (same arguments, parameters and state_dict keys) computed by zoo's kernels.

    On CPUs where MKL runs its slower code (AMD) the float32 products run on zoo's AVX-512 kernel,
    about twice as fast there; elsewhere the layer computes with torch's BLAS, as ``nn.Linear`` does.
    """

    def forward(self, input: Tensor) -> Tensor:
        """``input @ weight.T + bias`` for an input (*, in_features)."""
        return linear(input, self.weight, self.bias)
