"""ONNX translations of zoo's custom ops, for ``torch.onnx.export(dynamo=True, custom_translation_table=...)``.

``zoo::conv2d`` becomes ``Conv``, ``zoo::batch_norm_eval``
``BatchNormalization`` (and ``Relu``, ``LeakyRelu`` or ``Elu`` after it for the fused activations),
``zoo::activation`` ``Relu``, ``LeakyRelu`` or ``Elu``, ``zoo::max_pool2d`` ``MaxPool`` and
``zoo::maxout`` ``Reshape`` + ``ReduceMax``, ``zoo::linear`` ``Gemm``: standard ONNX operators only, so any runtime can load
the file. The functions are written against opset 18, the opset torch's own
translations use; the exporter converts the whole graph to the requested opset.
``zoo::batch_norm_train`` (batch statistics) has no entry: an eval-mode model
never calls it unless a BatchNorm layer has ``track_running_stats=False``.
``zoo::max_pool2d_with_indices`` has none either: an eval-mode model calls it
only from a pooling layer with ``return_indices=True`` (ONNX's indices count
over the whole tensor, torch's within each plane).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from onnxscript import opset18 as op

import zoo  # noqa: F401  (registers the zoo ops the table's keys name)

__all__ = ["TRANSLATION_TABLE", "activation", "conv2d", "batch_norm_eval", "linear", "max_pool2d", "maxout"]


def conv2d(x, weight, bias, stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int]):
    """``zoo::conv2d`` -> ONNX ``Conv`` (groups 1, zero padding, symmetric pads)."""
    pads = [*padding, *padding]  # ONNX: begin pads of each axis, then end pads
    if bias is None:
        return op.Conv(x, weight, strides=stride, pads=pads, dilations=dilation)
    return op.Conv(x, weight, bias, strides=stride, pads=pads, dilations=dilation)


def linear(x, weight, bias=None):
    """``zoo::linear`` -> ONNX ``Gemm`` with the weight transposed (``transB=1``), as torch exports ``nn.Linear``."""
    if bias is None:
        return op.Gemm(x, weight, transB=1)
    return op.Gemm(x, weight, bias, transB=1)


def batch_norm_eval(x, weight, bias, running_mean, running_var, eps: float, activation: str = "none",
                    alpha: float = 0.0):
    """``zoo::batch_norm_eval`` -> ONNX ``BatchNormalization`` (inference form, one output), then the fused activation (Relu, LeakyRelu, Elu)."""
    # ONNX needs scale and bias; a layer with affine=False has neither: use 1 and 0.
    if weight is None:
        weight = op.Expand(op.CastLike(1.0, running_mean), op.Shape(running_mean))
    if bias is None:
        bias = op.Expand(op.CastLike(0.0, running_mean), op.Shape(running_mean))
    return _activation(op.BatchNormalization(x, weight, bias, running_mean, running_var, epsilon=eps),
                       activation, alpha)


def _activation(y, activation: str, alpha: float):
    # The activation's ONNX operator (the names of zoo.ops.activation.FUSED_ACTIVATIONS, or "none").
    if activation == "relu":
        return op.Relu(y)
    if activation == "leaky_relu":
        return op.LeakyRelu(y, alpha=alpha)
    if activation == "elu":
        return op.Elu(y, alpha=alpha)
    return op.Identity(y)


def activation(x, activation: str, alpha: float = 0.0):
    """``zoo::activation`` -> ``Relu``, ``LeakyRelu`` or ``Elu`` (``Identity`` for ``"none"``)."""
    return _activation(x, activation, alpha)


def max_pool2d(x, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int],
               ceil_mode: bool):
    """``zoo::max_pool2d`` -> ONNX ``MaxPool`` (symmetric pads, padding counting as -inf as in torch)."""
    pads = [*padding, *padding]
    # onnxscript's MaxPool gives both outputs; the second (indices, optional in ONNX) is unused and pruned.
    y, _ = op.MaxPool(x, kernel_shape=kernel_size, strides=stride, pads=pads, dilations=dilation,
                      ceil_mode=int(ceil_mode))
    return y


def maxout(x, pieces: int):
    """``zoo::maxout`` -> ``Reshape`` to (N, C, pieces, ...) and ``ReduceMax`` over the pieces."""
    shape = op.Shape(x)
    channels = op.Div(op.Slice(shape, [1], [2]), op.CastLike(pieces, shape))
    grouped = op.Concat(op.Slice(shape, [0], [1]), channels, op.CastLike([pieces], shape), op.Slice(shape, [2], [64]),
                        axis=0)
    return op.ReduceMax(op.Reshape(x, grouped), [2], keepdims=0)


# Keys must be the op overloads (.default): the bare op packet raises a TypeError in the exporter.
TRANSLATION_TABLE: dict[Callable, Callable] = {
    torch.ops.zoo.activation.default: activation,
    torch.ops.zoo.conv2d.default: conv2d,
    torch.ops.zoo.batch_norm_eval.default: batch_norm_eval,
    torch.ops.zoo.linear.default: linear,
    torch.ops.zoo.max_pool2d.default: max_pool2d,
    torch.ops.zoo.maxout.default: maxout,
}
