"""2-D convolution as `torch.library` custom ops over zoo's kernels, and its functional form.

- ``zoo::conv2d(x, weight, bias, stride, padding, dilation) -> y``
- ``zoo::conv2d_backward(grad_y, x, weight, stride, padding, dilation, output_mask) -> (dx, dweight, dbias)``

groups = 1 only. The output is always contiguous NCHW (a channels-last input
is read through a contiguous copy).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from zoo import _C
from zoo.ops.checks import check_channel_vector, check_matches, check_tensor, pair

_OP = "zoo.ops.conv2d"


@torch.library.custom_op("zoo::conv2d", mutates_args=(), device_types="cpu")
def conv2d_op(
    x: Tensor, weight: Tensor, bias: Tensor | None, stride: list[int], padding: list[int], dilation: list[int]
) -> Tensor:
    """y = conv2d(x, weight) + bias, with zero padding."""
    return _C.cpu_conv2d_forward(x, weight, bias, stride, padding, dilation)


@torch.library.custom_op("zoo::conv2d_backward", mutates_args=(), device_types="cpu")
def conv2d_backward(
    grad_y: Tensor,
    x: Tensor,
    weight: Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    output_mask: list[bool],
) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dweight, dbias) for output_mask = [dx, dweight, dbias]; unrequested ones are empty tensors."""
    return tuple(_C.cpu_conv2d_backward(grad_y, x, weight, stride, padding, dilation, output_mask))


if _C.with_cuda:
    conv2d_op.register_kernel("cuda")(_C.cuda_conv2d_forward)
    conv2d_backward.register_kernel("cuda")(
        lambda grad_y, x, weight, stride, padding, dilation, output_mask: tuple(
            _C.cuda_conv2d_backward(grad_y, x, weight, stride, padding, dilation, output_mask)
        )
    )


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one dimension (may be <= 0 for impossible geometry)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@conv2d_op.register_fake
def _(x, weight, bias, stride, padding, dilation):
    height = output_size(x.shape[2], weight.shape[2], stride[0], padding[0], dilation[0])
    width = output_size(x.shape[3], weight.shape[3], stride[1], padding[1], dilation[1])
    return x.new_empty((x.shape[0], weight.shape[0], height, width))


@conv2d_backward.register_fake
def _(grad_y, x, weight, stride, padding, dilation, output_mask):
    dx = x.new_empty(x.shape) if output_mask[0] else x.new_empty(0)
    dweight = weight.new_empty(weight.shape) if output_mask[1] else x.new_empty(0)
    dbias = x.new_empty(weight.shape[0]) if output_mask[2] else x.new_empty(0)
    return dx, dweight, dbias


def _setup_context(ctx, inputs, output):
    x, weight, bias, stride, padding, dilation = inputs
    ctx.save_for_backward(x, weight)
    ctx.geometry = (stride, padding, dilation)
    ctx.has_bias = bias is not None


def _backward(ctx, grad_y):
    x, weight = ctx.saved_tensors
    need_dx, need_dweight, need_dbias = ctx.needs_input_grad[:3]
    mask = [need_dx, need_dweight, need_dbias and ctx.has_bias]
    dx, dweight, dbias = conv2d_backward(grad_y, x, weight, *ctx.geometry, mask)
    return dx if mask[0] else None, dweight if mask[1] else None, dbias if mask[2] else None, None, None, None


conv2d_op.register_autograd(_backward, setup_context=_setup_context)


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
    Only ``groups=1`` is supported.
    """
    check_tensor(_OP, "input", x)
    check_tensor(_OP, "weight", weight)
    check_matches(_OP, x, weight=weight, bias=bias)
    if groups != 1:
        raise NotImplementedError(f"{_OP}: groups={groups} is not supported; zoo's kernels implement groups=1 only")
    if isinstance(padding, str):
        raise ValueError(f"{_OP}: string padding {padding!r} is handled by zoo.nn.Conv2d; pass numbers here")
    stride, padding, dilation = pair(_OP, "stride", stride), pair(_OP, "padding", padding), pair(_OP, "dilation", dilation)
    if x.dim() == 3:
        return conv2d(x.unsqueeze(0), weight, bias, stride, padding, dilation).squeeze(0)
    if x.dim() != 4:
        raise ValueError(f"{_OP}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got {x.dim()}-D of shape {tuple(x.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"{_OP}: expected a 4-D weight (Cout, Cin, kh, kw), got shape {tuple(weight.shape)}")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"{_OP}: weight of shape {tuple(weight.shape)} expects {weight.shape[1]} input channels, "
            f"but the input of shape {tuple(x.shape)} has {x.shape[1]}"
        )
    if x.numel() == 0 or weight.numel() == 0:
        raise ValueError(f"{_OP}: empty input {tuple(x.shape)} or weight {tuple(weight.shape)}")
    check_channel_vector(_OP, "bias", bias, weight.shape[0])
    if min(stride) <= 0:
        raise ValueError(f"{_OP}: stride must be positive, got {stride}")
    if min(padding) < 0:
        raise ValueError(f"{_OP}: padding must be non-negative, got {padding}")
    if min(dilation) <= 0:
        raise ValueError(f"{_OP}: dilation must be positive, got {dilation}")
    out = [output_size(x.shape[2 + d], weight.shape[2 + d], stride[d], padding[d], dilation[d]) for d in range(2)]
    if min(out) <= 0:
        raise ValueError(
            f"{_OP}: input {tuple(x.shape[2:])} with padding {padding} is smaller than the kernel "
            f"{tuple(weight.shape[2:])} at dilation {dilation}, so there is no output"
        )
    return conv2d_op(x.contiguous(), weight, bias, stride, padding, dilation)
