"""zoo max_pool2d against torch's own: values, indices, ties, NaNs and gradients over random geometries."""

import random

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import zoo
from zoo.export.translation import TRANSLATION_TABLE


def random_case(rng: random.Random, dtype: torch.dtype, max_size: int):
    """(x, kernel, stride, padding, dilation, ceil_mode), padding mostly within torch's limit."""
    kernel = (rng.randint(1, 4), rng.randint(1, 4))
    stride = (rng.randint(1, 3), rng.randint(1, 3))
    if rng.random() < 0.9:
        padding = (rng.randint(0, kernel[0] // 2), rng.randint(0, kernel[1] // 2))
    else:
        padding = (rng.randint(0, 2), rng.randint(0, 2))
    dilation = (rng.randint(1, 3), rng.randint(1, 3))
    shape = (rng.randint(0, 2), rng.randint(1, 3), rng.randint(1, max_size), rng.randint(1, max_size))
    x = torch.randn(shape, dtype=dtype)
    if rng.random() < 0.3:
        x = x.round()  # ties: the first maximum wins
    if rng.random() < 0.2:
        x[x > 1.2] = float("nan")  # NaN wins (the last one)
    if rng.random() < 0.1:
        x[x < -1] = float("-inf")
    return x, kernel, stride, padding, dilation, rng.random() < 0.5


def has_empty_window(indices: torch.Tensor, x: torch.Tensor) -> bool:
    # With ceil mode and dilation a window can hold no input value; torch then gives an index outside the plane
    # and its backward writes there (out of bounds). zoo's backward skips such indices.
    return bool(((indices < 0) | (indices >= x.shape[2] * x.shape[3])).any())


@pytest.mark.parametrize(("dtype", "max_size", "seed"), [(torch.float64, 9, 0), (torch.float32, 40, 1)])
def test_random_geometries_match_torch(dtype, max_size, seed):
    rng = random.Random(seed)
    checked = refused = 0
    for _ in range(300):
        x, kernel, stride, padding, dilation, ceil_mode = random_case(rng, dtype, max_size)
        args = (kernel, stride, padding, dilation, ceil_mode)
        try:
            expected, expected_indices = F.max_pool2d(x, *args, return_indices=True)
        except RuntimeError:
            with pytest.raises(ValueError, match="zoo max_pool2d"):
                zoo.ops.max_pool2d(x, *args)
            refused += 1
            continue
        y, indices = zoo.ops.max_pool2d(x, *args, return_indices=True)
        torch.testing.assert_close(y, expected, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(indices, expected_indices, rtol=0, atol=0)
        torch.testing.assert_close(zoo.ops.max_pool2d(x, *args), expected, rtol=0, atol=0, equal_nan=True)
        if has_empty_window(indices, x):
            continue
        ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
        grad_y = torch.randn_like(expected)
        zoo.ops.max_pool2d(ours, *args).backward(grad_y)
        F.max_pool2d(theirs, *args).backward(grad_y)
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=0)
        checked += 1
    assert checked > 150 and refused > 5


# The presets' pools and the CPU kernel's paths: stride 1 and 2 (vector rows, 16 outputs at a time), other strides.
@pytest.mark.parametrize(
    ("shape", "kernel", "stride", "padding"),
    [
        ((5, 8, 28, 28), 2, 2, 0),  # MNIST CNNs
        ((3, 16, 32, 32), 3, 2, 1),  # NIN
        ((2, 4, 37, 41), 3, 1, 1),  # rows of 16 + remainder
        ((2, 3, 20, 70), (2, 3), 3, (1, 1)),  # stride 3
        ((1, 2, 9, 9), 1, 1, 0),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_matches_torch(shape, kernel, stride, padding, dtype):
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    ours, theirs = zoo.nn.MaxPool2d(kernel, stride, padding), torch.nn.MaxPool2d(kernel, stride, padding)
    y = ours(x)
    torch.testing.assert_close(y, theirs(x), rtol=0, atol=0)
    grad_y = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, x, grad_y)
    (expected,) = torch.autograd.grad(theirs(x), x, grad_y)
    torch.testing.assert_close(dx, expected, rtol=0, atol=0)


def test_return_indices_unbatched_channels_last_and_ceil_mode_like_torch():
    x = torch.randn(2, 3, 11, 10)
    for kwargs in ({"return_indices": True}, {"ceil_mode": True, "padding": 1}, {"stride": (1, 2), "dilation": 2}):
        ours, theirs = zoo.nn.MaxPool2d(3, **kwargs), torch.nn.MaxPool2d(3, **kwargs)
        for inp in (x, x[0], x.contiguous(memory_format=torch.channels_last), x[:, :, ::2]):
            expected = theirs(inp)
            got = ours(inp)
            if kwargs.get("return_indices"):
                torch.testing.assert_close(got[0], expected[0], rtol=0, atol=0)
                torch.testing.assert_close(got[1], expected[1], rtol=0, atol=0)
            else:
                torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_empty_batch_like_torch():
    x = torch.randn(0, 3, 8, 8, requires_grad=True)
    y, indices = zoo.ops.max_pool2d(x, 2, return_indices=True)
    assert y.shape == indices.shape == F.max_pool2d(x, 2).shape and indices.dtype == torch.int64
    y.sum().backward()
    assert x.grad.shape == x.shape


def test_no_grad_runs_without_indices_and_without_a_graph():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with torch.no_grad():
        y = zoo.ops.max_pool2d(x, 2)
    assert y.grad_fn is None and not y.requires_grad
    torch.testing.assert_close(y, F.max_pool2d(x, 2), rtol=0, atol=0)


def test_indices_are_not_differentiable():
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    y, indices = zoo.ops.max_pool2d(x, 2, return_indices=True)
    assert y.requires_grad and not indices.requires_grad
    (y.sum() + indices.sum()).backward()
    torch.testing.assert_close(x.grad, torch.autograd.grad(F.max_pool2d(x, 2).sum(), x)[0])


def test_gradcheck():
    # Distinct values, so no tie moves with the finite-difference steps.
    x = (torch.randperm(2 * 3 * 7 * 8, dtype=torch.float64) / 10).reshape(2, 3, 7, 8).requires_grad_()
    assert gradcheck(lambda t: zoo.ops.max_pool2d(t, 3, 2, 1, ceil_mode=True), (x,))
    assert gradcheck(lambda t: zoo.ops.max_pool2d(t, (2, 3), (1, 2), 0, (2, 1)), (x,))


def test_opcheck():
    x = torch.randn(2, 3, 7, 8, requires_grad=True)
    for args in (([3, 3], [2, 2], [1, 1], [1, 1], True), ([2, 2], [2, 2], [0, 0], [1, 1], False)):
        torch.library.opcheck(torch.ops.zoo.max_pool2d.default, (x, *args))
        torch.library.opcheck(torch.ops.zoo.max_pool2d_with_indices.default, (x, *args))
        y, indices = torch.ops.zoo.max_pool2d_with_indices(x.detach(), *args)
        torch.library.opcheck(torch.ops.zoo.max_pool2d_backward.default, (torch.randn_like(y), x.detach(), indices, *args))


def test_backward_skips_indices_outside_the_plane():
    x = torch.randn(1, 1, 3, 3)
    grad_y = torch.ones(1, 1, 2, 2)
    indices = torch.tensor([[[[0, 9], [-1, 8]]]])  # 9 and -1 lie outside the 3x3 plane
    dx = torch.ops.zoo.max_pool2d_backward(grad_y, x, indices, [2, 2], [1, 1], [0, 0], [1, 1], False)
    expected = torch.zeros(1, 1, 3, 3)
    expected.view(-1)[[0, 8]] = 1
    torch.testing.assert_close(dx, expected)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: zoo.ops.max_pool2d(torch.randn(1, 1, 4, 4).half(), 2), TypeError, "float32 or float64"),
        (lambda: zoo.ops.max_pool2d(torch.ones(1, 1, 4, 4, dtype=torch.int64), 2), TypeError, "torch.int64"),
        (lambda: zoo.ops.max_pool2d(torch.randn(4, 4), 2), ValueError, "3-D .* or 4-D"),
        (lambda: zoo.ops.max_pool2d(torch.randn(1, 0, 4, 4), 2), ValueError, "non-empty"),
        (lambda: zoo.ops.max_pool2d(torch.randn(1, 1, 4, 4), 0), ValueError, "kernel_size must be positive"),
        (lambda: zoo.ops.max_pool2d(torch.randn(1, 1, 4, 4), 2, stride=-1), ValueError, "stride must be positive"),
        (lambda: zoo.ops.max_pool2d(torch.randn(1, 1, 4, 4), 2, padding=2), ValueError, "at most half"),
        (lambda: zoo.ops.max_pool2d(torch.randn(1, 1, 4, 4), 2, dilation=0), ValueError, "dilation must be positive"),
        (lambda: zoo.ops.max_pool2d(torch.randn(1, 1, 2, 2), 3), ValueError, "too small"),
        (lambda: zoo.ops.max_pool2d(torch.randn(1, 1, 4, 4), (2, 2, 2)), ValueError, "1 or 2 ints"),
        (lambda: zoo.ops.max_pool2d(torch.randn(1, 1, 4, 4), 2.5), TypeError, "kernel_size must be an int"),
        (lambda: zoo.ops.max_pool2d([[1.0]], 2), TypeError, "torch.Tensor"),
        (lambda: zoo.ops.max_pool2d(torch.randn(1, 1, 4, 4).to_sparse(), 2), TypeError, "layout"),
        (
            lambda: torch.ops.zoo.max_pool2d_backward(
                torch.randn(1, 1, 2, 2), torch.randn(1, 1, 4, 4), torch.zeros(1, 1, 2, 2, dtype=torch.int32),
                [2, 2], [2, 2], [0, 0], [1, 1], False),
            TypeError, "indices must be torch.int64",
        ),
        (
            lambda: torch.ops.zoo.max_pool2d_backward(
                torch.randn(1, 1, 3, 2), torch.randn(1, 1, 4, 4), torch.zeros(1, 1, 3, 2, dtype=torch.int64),
                [2, 2], [2, 2], [0, 0], [1, 1], False),
            ValueError, "grad_y has shape",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_torch_refuses_the_same_input():
    # The refusals above are torch's too (as RuntimeError/ValueError/TypeError), so the layer stays drop-in.
    for args in ((0,), (2, -1), (2, 2, 2), (2, 2, 0, 0)):
        with pytest.raises((RuntimeError, ValueError)):
            F.max_pool2d(torch.randn(1, 1, 4, 4), *args)


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
                                    {"kernel_size": (2, 3), "stride": 1, "dilation": (2, 1)}])
def test_onnx_export_is_maxpool_and_matches_torch(tmp_path, kwargs):
    model = torch.nn.Sequential(zoo.nn.MaxPool2d(**kwargs)).eval()
    x = torch.randn(2, 3, 11, 12)
    path = tmp_path / "pool.onnx"
    torch.onnx.export(model, (x,), path, dynamo=True, custom_translation_table=TRANSLATION_TABLE)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_array_equal(got, torch.nn.MaxPool2d(**kwargs)(x).numpy())
    assert [node.op_type for node in onnx.load(path).graph.node] == ["MaxPool"]
