"""2-D convolution: the fake kernels of the ``zoo`` convolution ops, and the functional form.

The ops are declared and implemented in C++ (``csrc/ops.cpp``, one kernel per
device, autograd in ``csrc/autograd``) and called as ``torch.ops.zoo.*``:

- ``zoo::conv2d(x, weight, bias, stride, padding, dilation) -> y``
- ``zoo::conv2d_backward(grad_y, x, weight, stride, padding, dilation, output_mask) -> (dx, dweight, dbias)``

groups = 1 only. The output is always contiguous NCHW (a channels-last input
is read through a contiguous copy).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from zoo import _C  # noqa: F401  (loading it registers the ops)
from zoo.ops.checks import DISPATCH_ERRORS, check_fake_devices, pair, raise_dispatch_error

_OP = "zoo.ops.conv2d"

conv2d_op = torch.ops.zoo.conv2d.default
conv2d_backward = torch.ops.zoo.conv2d_backward.default


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one dimension (may be <= 0 for impossible geometry)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@torch.library.register_fake("zoo::conv2d")
def _(x, weight, bias, stride, padding, dilation):
    check_fake_devices("zoo conv2d", x, weight=weight, bias=bias)
    torch._check_value(x.dim() == 4 and weight.dim() == 4, lambda: "zoo conv2d: expected a 4-D input and weight")
    height = output_size(x.shape[2], weight.shape[2], stride[0], padding[0], dilation[0])
    width = output_size(x.shape[3], weight.shape[3], stride[1], padding[1], dilation[1])
    torch._check_value(height > 0 and width > 0, lambda: "zoo conv2d: the padded input is smaller than the dilated kernel")
    return x.new_empty((x.shape[0], weight.shape[0], height, width))


@torch.library.register_fake("zoo::conv2d_backward")
def _(grad_y, x, weight, stride, padding, dilation, output_mask):
    check_fake_devices("zoo conv2d_backward", x, grad_y=grad_y, weight=weight)
    dx = x.new_empty(x.shape) if output_mask[0] else x.new_empty(0)
    dweight = weight.new_empty(weight.shape) if output_mask[1] else x.new_empty(0)
    dbias = x.new_empty(weight.shape[0]) if output_mask[2] else x.new_empty(0)
    return dx, dweight, dbias


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution on zoo's kernels, with the signature of ``torch.nn.functional.conv2d``.

    ``x`` is (N, Cin, H, W) or unbatched (Cin, H, W); ``weight`` is
    (Cout, Cin, kh, kw); ``padding`` is an int or a pair of ints (zero padding).
    Only ``groups=1`` is supported. Bad shapes or values raise ValueError, bad
    dtypes TypeError.
    """
    if groups != 1:
        raise NotImplementedError(f"{_OP}: groups={groups} is not supported; zoo's kernels implement groups=1 only")
    if isinstance(padding, str):
        raise ValueError(f"{_OP}: string padding {padding!r} is handled by zoo.nn.Conv2d; pass numbers here")
    stride, padding, dilation = pair(_OP, "stride", stride), pair(_OP, "padding", padding), pair(_OP, "dilation", dilation)
    try:
        if x.dim() == 3:  # unbatched, as torch accepts
            return conv2d_op(x.unsqueeze(0), weight, bias, stride, padding, dilation).squeeze(0)
        if x.dim() != 4:
            raise ValueError(f"{_OP}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got {x.dim()}-D of shape "
                             f"{tuple(x.shape)}")
        return conv2d_op(x, weight, bias, stride, padding, dilation)
    except DISPATCH_ERRORS as error:
        raise_dispatch_error(_OP, error, input=x, weight=weight, bias=bias)
