"""Dropout layer on zoo's kernels, drop-in for ``torch.nn.Dropout``."""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.ops.dropout import dropout


class Dropout(torch.nn.Dropout):
    """Drop-in ``torch.nn.Dropout`` (same arguments, behaviour and state) computed by zoo's kernel.

    The mask is drawn from torch's generator through a seed (see
    :func:`zoo.ops.dropout`): ``torch.manual_seed`` makes it repeat, but it is
    not the mask torch's own dropout would draw.
    """

    def forward(self, input: Tensor) -> Tensor:
        """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)`` in training; identity in eval."""
        return dropout(input, self.p, self.training, self.inplace)
