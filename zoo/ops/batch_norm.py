"""Batch norm as `torch.library` custom ops over zoo's kernels, and its functional form.

Three ops, each with a fake (meta) implementation so they trace under
torch.compile and torch.export:

- ``zoo::batch_norm_train(x, weight, bias, eps) -> (y, mean, invstd, var_unbiased)``
- ``zoo::batch_norm_eval(x, weight, bias, running_mean, running_var, eps) -> y``
- ``zoo::batch_norm_backward(grad_y, x, weight, mean, invstd, train) -> (dx, dweight, dbias)``

The ops are pure: running statistics are updated by :func:`batch_norm` (and so
by the layers) from the returned batch statistics, outside autograd, exactly
as ``torch.nn.functional.batch_norm`` does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo import _C
from zoo.ops.checks import check_channel_vector, check_matches, check_tensor

_OP = "zoo.ops.batch_norm"


@torch.library.custom_op("zoo::batch_norm_train", mutates_args=(), device_types="cpu")
def batch_norm_train(
    x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Normalise x with its batch statistics; returns (y, mean, invstd, var_unbiased)."""
    return tuple(_C.cpu_batch_norm_train(x, weight, bias, eps))


@torch.library.custom_op("zoo::batch_norm_eval", mutates_args=(), device_types="cpu")
def batch_norm_eval(
    x: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor, running_var: Tensor, eps: float
) -> Tensor:
    """Normalise x with running statistics."""
    return _C.cpu_batch_norm_eval(x, weight, bias, running_mean, running_var, eps)


@torch.library.custom_op("zoo::batch_norm_backward", mutates_args=(), device_types="cpu")
def batch_norm_backward(
    grad_y: Tensor, x: Tensor, weight: Tensor | None, mean: Tensor, invstd: Tensor, train: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Fused backward: (dx, dweight, dbias); dweight/dbias have shape (C,) even without a weight."""
    return tuple(_C.cpu_batch_norm_backward(grad_y, x, weight, mean, invstd, train))


if _C.with_cuda:
    batch_norm_train.register_kernel("cuda")(
        lambda x, weight, bias, eps: tuple(_C.cuda_batch_norm_train(x, weight, bias, eps))
    )
    batch_norm_eval.register_kernel("cuda")(_C.cuda_batch_norm_eval)
    batch_norm_backward.register_kernel("cuda")(
        lambda grad_y, x, weight, mean, invstd, train: tuple(
            _C.cuda_batch_norm_backward(grad_y, x, weight, mean, invstd, train)
        )
    )


@batch_norm_train.register_fake
def _(x, weight, bias, eps):
    channels = x.shape[1]
    return torch.empty_like(x), x.new_empty(channels), x.new_empty(channels), x.new_empty(channels)


@batch_norm_eval.register_fake
def _(x, weight, bias, running_mean, running_var, eps):
    return torch.empty_like(x)


@batch_norm_backward.register_fake
def _(grad_y, x, weight, mean, invstd, train):
    channels = x.shape[1]
    return torch.empty_like(x), x.new_empty(channels), x.new_empty(channels)


def _train_setup_context(ctx, inputs, output):
    x, weight, bias, _eps = inputs
    _y, mean, invstd, var = output
    ctx.save_for_backward(x, weight, mean, invstd)
    ctx.has_bias = bias is not None
    ctx.mark_non_differentiable(mean, invstd, var)


def _train_backward(ctx, grad_y, _grad_mean, _grad_invstd, _grad_var):
    x, weight, mean, invstd = ctx.saved_tensors
    dx, dweight, dbias = batch_norm_backward(grad_y, x, weight, mean, invstd, True)
    return dx, dweight if weight is not None else None, dbias if ctx.has_bias else None, None


batch_norm_train.register_autograd(_train_backward, setup_context=_train_setup_context)


def _eval_setup_context(ctx, inputs, output):
    x, weight, bias, running_mean, running_var, eps = inputs
    ctx.save_for_backward(x, weight, running_mean, running_var)
    ctx.eps = eps
    ctx.has_bias = bias is not None


def _eval_backward(ctx, grad_y):
    x, weight, running_mean, running_var = ctx.saved_tensors
    invstd = torch.rsqrt(running_var + ctx.eps)
    dx, dweight, dbias = batch_norm_backward(grad_y, x, weight, running_mean, invstd, False)
    # Running statistics are buffers, not parameters: no gradient flows into them.
    return dx, dweight if weight is not None else None, dbias if ctx.has_bias else None, None, None, None


batch_norm_eval.register_autograd(_eval_backward, setup_context=_eval_setup_context)


def supported_layout(x: Tensor) -> Tensor:
    """x itself if the kernels read its layout directly (contiguous, or 4-D channels-last), else a contiguous copy."""
    if x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)):
        return x
    return x.contiguous()


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch norm on zoo's kernels, with the signature and semantics of ``torch.nn.functional.batch_norm``.

    ``x`` is (N, C), (N, C, L) or (N, C, H, W), float32 or float64. In training
    the batch statistics normalise ``x`` and, when running buffers are given,
    update them in place: ``running = (1 - momentum) * running + momentum * batch``,
    with the unbiased batch variance. Outside training the running statistics
    normalise ``x``.
    """
    check_tensor(_OP, "input", x)
    if x.dim() not in (2, 3, 4):
        raise ValueError(f"{_OP}: expected a 2-D, 3-D or 4-D input (N, C, ...), got {x.dim()}-D of shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{_OP}: the input of shape {tuple(x.shape)} is empty")
    channels = x.shape[1]
    check_matches(_OP, x, weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)):
        check_channel_vector(_OP, name, t, channels)
    if eps < 0:
        raise ValueError(f"{_OP}: eps must be non-negative, got {eps}")
    x = supported_layout(x)

    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(f"{_OP}: running_mean and running_var are required when training=False")
        return batch_norm_eval(x, weight, bias, running_mean, running_var, eps)

    values_per_channel = x.numel() // channels
    if values_per_channel <= 1:
        raise ValueError(
            f"{_OP}: expected more than 1 value per channel when training, got input size {tuple(x.shape)}"
        )
    y, mean, _invstd, var_unbiased = batch_norm_train(x, weight, bias, eps)
    # running = (1 - momentum) * running + momentum * batch, in one fused op each.
    with torch.no_grad():
        if running_mean is not None:
            running_mean.lerp_(mean, momentum)
        if running_var is not None:
            running_var.lerp_(var_unbiased, momentum)
    return y
