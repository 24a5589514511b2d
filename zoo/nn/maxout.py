"""Maxout layer on zoo's kernels."""

from __future__ import annotations

from torch import Tensor, nn

from zoo.ops.maxout import maxout


class Maxout(nn.Module):
    """Maximum over ``pieces`` consecutive channels of dimension 1: ``(N, k*C, ...) -> (N, C, ...)``.

    Put after a Linear (or Conv2d) layer with ``k*C`` outputs to get a maxout
    unit with ``k`` linear pieces per output channel (Goodfellow et al. 2013).
    Computes ``x.unflatten(1, (-1, k)).amax(dim=2)`` and its gradient with
    zoo's kernels (:func:`zoo.ops.maxout`).
    """

    def __init__(self, pieces: int) -> None:
        super().__init__()
        if pieces < 2:
            raise ValueError(f"maxout needs at least 2 pieces, got {pieces}")
        self.pieces = pieces

    def forward(self, x: Tensor) -> Tensor:
        """Take the maximum of each group of ``pieces`` channels."""
        return maxout(x, self.pieces)

    def extra_repr(self) -> str:
        """Shown in the module's repr."""
        return f"pieces={self.pieces}"
