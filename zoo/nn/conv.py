"""Convolution layer on zoo's kernels, drop-in for ``torch.nn.Conv2d``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.ops.conv2d import conv2d


class Conv2d(torch.nn.Conv2d):
    """Drop-in ``torch.nn.Conv2d`` (same arguments, parameters and state_dict keys) computed by zoo's kernels.

    Supports every stride, padding (numbers, ``'same'``, ``'valid'``), dilation
    and padding mode; ``groups`` must be 1.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise NotImplementedError(f"zoo.nn.Conv2d: groups={self.groups} is not supported; zoo's kernels implement groups=1 only")

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv2d(input, weight, bias, self.stride, 0, self.dilation)
        if self.padding == "valid":
            return conv2d(input, weight, bias, self.stride, 0, self.dilation)
        if self.padding == "same":
            # torch pads 'same' asymmetrically when the dilated kernel has even size: the extra row/column goes last.
            left = [d * (k - 1) // 2 for d, k in zip(self.dilation, self.kernel_size)]
            total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            if all(2 * lo == t for lo, t in zip(left, total)):
                return conv2d(input, weight, bias, self.stride, left, self.dilation)
            extra = [t - 2 * lo for lo, t in zip(left, total)]
            input = F.pad(input, (0, extra[1], 0, extra[0]))
            return conv2d(input, weight, bias, self.stride, left, self.dilation)
        return conv2d(input, weight, bias, self.stride, self.padding, self.dilation)
