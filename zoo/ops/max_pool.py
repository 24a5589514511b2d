"""2-D max pooling: the fake kernels of the ``zoo`` max-pooling ops, and the functional form.

The ops are declared and implemented in C++ (``csrc/ops.cpp``, one kernel per
device, autograd in ``csrc/autograd``) and called as ``torch.ops.zoo.*``:

- ``zoo::max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode) -> y``
- ``zoo::max_pool2d_with_indices(x, ...) -> (y, indices)``: each output's argmax
  as an index into its (H, W) plane, int64, as torch's
- ``zoo::max_pool2d_backward(grad_y, x, indices, ...) -> dx``

With autograd, ``zoo::max_pool2d`` keeps the indices for the backward; without
(inference) it writes none. Values, indices, ties (the first maximum wins) and
NaNs (propagated) are torch's. The output is always contiguous NCHW.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from zoo import _C  # noqa: F401  (loading it registers the ops)
from zoo.ops.checks import DISPATCH_ERRORS, check_fake_devices, pair, raise_dispatch_error

_OP = "zoo.ops.max_pool2d"

max_pool2d_op = torch.ops.zoo.max_pool2d.default
max_pool2d_with_indices_op = torch.ops.zoo.max_pool2d_with_indices.default
max_pool2d_backward = torch.ops.zoo.max_pool2d_backward.default


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """Output length of a pooling along one dimension, as torch computes it (may be <= 0 for impossible geometry)."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window must start inside the input or its left padding
    return out


def _fake_output(x, kernel_size, stride, padding, dilation, ceil_mode):
    torch._check_value(x.dim() == 4, lambda: "zoo max_pool2d: expected a 4-D input")
    height = pool_output_size(x.shape[2], kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    width = pool_output_size(x.shape[3], kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    torch._check_value(height > 0 and width > 0, lambda: "zoo max_pool2d: the output would be empty")
    return x.new_empty((x.shape[0], x.shape[1], height, width))


@torch.library.register_fake("zoo::max_pool2d")
def _(x, kernel_size, stride, padding, dilation, ceil_mode):
    return _fake_output(x, kernel_size, stride, padding, dilation, ceil_mode)


@torch.library.register_fake("zoo::max_pool2d_with_indices")
def _(x, kernel_size, stride, padding, dilation, ceil_mode):
    y = _fake_output(x, kernel_size, stride, padding, dilation, ceil_mode)
    return y, y.new_empty(y.shape, dtype=torch.int64)


@torch.library.register_fake("zoo::max_pool2d_backward")
def _(grad_y, x, indices, kernel_size, stride, padding, dilation, ceil_mode):
    check_fake_devices("zoo max_pool2d_backward", x, grad_y=grad_y, indices=indices)
    return x.new_empty(x.shape)


def max_pool2d(
    x: Tensor,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """2-D max pooling on zoo's kernels, with the signature of ``torch.nn.functional.max_pool2d``.

    ``x`` is (N, C, H, W) or unbatched (C, H, W); ``stride`` defaults to
    ``kernel_size``; ``padding`` (at most half the kernel) counts as -inf.
    With ``return_indices`` also returns each output's argmax as an index into
    its (H, W) plane (int64), as torch does. Bad shapes or values raise
    ValueError, bad dtypes TypeError.
    """
    kernel_size = pair(_OP, "kernel_size", kernel_size)
    no_stride = stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
    stride = kernel_size if no_stride else pair(_OP, "stride", stride)
    padding, dilation = pair(_OP, "padding", padding), pair(_OP, "dilation", dilation)
    ceil_mode = bool(ceil_mode)
    op = max_pool2d_with_indices_op if return_indices else max_pool2d_op
    try:
        if x.dim() == 3:  # unbatched, as torch accepts
            out = op(x.unsqueeze(0), kernel_size, stride, padding, dilation, ceil_mode)
            return (out[0].squeeze(0), out[1].squeeze(0)) if return_indices else out.squeeze(0)
        if x.dim() != 4:
            raise ValueError(f"{_OP}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got {x.dim()}-D of shape "
                             f"{tuple(x.shape)}")
        return op(x, kernel_size, stride, padding, dilation, ceil_mode)
    except DISPATCH_ERRORS as error:
        raise_dispatch_error(_OP, error, input=x)
