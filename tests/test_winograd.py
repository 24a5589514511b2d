"""The CPU convolution's Winograd paths (F(2x2, 3x3) and F(2x2, 5x5)) against torch: which
layers take them, forward and every gradient in float64, gradcheck, opcheck, and their
float32 error."""

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import zoo
from conftest import assert_close


def algorithm(n, cin, h, w, cout, kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1)):
    x, weight = torch.empty(n, cin, h, w, device="meta"), torch.empty(cout, cin, *kernel, device="meta")
    return zoo._C.conv2d_cpu_algorithm(x, weight, list(stride), list(padding), list(dilation))


@pytest.mark.parametrize(
    "layer, expected",
    [
        ((128, 32, 14, 14, 64), "winograd"),  # mnist_cnn_32_64's second convolution
        ((128, 192, 8, 8, 192), "winograd"),  # NIN's 3x3 block
        ((128, 192, 8, 8, 384), "winograd"),  # NIN maxout's 3x3 block
        ((2, 16, 8, 8, 16), "winograd"),  # 32 tiles: the smallest batch that takes it
        ((1, 192, 8, 8, 192), "im2col"),  # 16 tiles: the kernel transform would dominate
        ((128, 4, 14, 14, 4), "direct"),  # few input channels
        ((128, 1, 28, 28, 32), "direct"),
        ((128, 96, 16, 16, 192, (5, 5), (1, 1), (2, 2)), "winograd"),  # NIN's 5x5 block
        ((128, 3, 32, 32, 192, (5, 5), (1, 1), (2, 2)), "direct"),  # NIN's input layer: 3 channels (too few for Winograd)
    ],
    ids=str,
)
def test_which_layers_take_winograd(layer, expected):
    assert algorithm(*layer) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel=(7, 7)),
        dict(kernel=(3, 5)),
        dict(stride=(2, 1)),
        dict(dilation=(1, 2)),
        dict(padding=(3, 1)),
        dict(kernel=(5, 5), padding=(5, 0)),
        dict(kernel=(3, 1)),
    ],
    ids=str,
)
def test_other_geometries_stay_on_im2col(kwargs):
    assert algorithm(8, 32, 16, 16, 32, **kwargs) == "im2col"


# (N, Cin, H, W, Cout, kernel size, padding): even and odd output sizes (partial last
# tiles), every padding each takes, unequal channel counts, more tiles than one chunk holds.
WINOGRAD_CASES = [
    (2, 16, 8, 8, 16, 3, (1, 1)),
    (3, 17, 7, 9, 20, 3, (1, 1)),
    (8, 16, 6, 5, 24, 3, (0, 0)),
    (2, 32, 6, 5, 16, 3, (2, 2)),
    (5, 16, 9, 4, 16, 3, (0, 2)),
    (17, 20, 3, 3, 18, 3, (1, 0)),
    (64, 32, 14, 14, 64, 3, (1, 1)),
    (2, 16, 8, 8, 16, 5, (2, 2)),
    (3, 17, 9, 7, 20, 5, (2, 2)),
    (8, 16, 7, 6, 24, 5, (0, 1)),
    (4, 16, 5, 6, 16, 5, (4, 3)),
    (16, 96, 16, 16, 48, 5, (2, 2)),
    # Planes of <= 64 values gathered whole (float32), with chunks that end inside an image.
    (8, 16, 6, 6, 16, 3, (1, 1)),
    (9, 16, 7, 7, 16, 5, (2, 2)),
]


def run(fn, x, weight, bias, grad_y):
    x, weight, bias = (t.detach().clone().requires_grad_() for t in (x, weight, bias))
    y = fn(x, weight, bias)
    y.backward(grad_y)
    return y.detach(), x.grad, weight.grad, bias.grad


def case_tensors(case):
    """float64 input, weight, bias and output gradient of a Winograd case, and its padding."""
    n, cin, h, w, cout, k, padding = case
    assert algorithm(n, cin, h, w, cout, kernel=(k, k), padding=padding) == "winograd"
    x = torch.randn(n, cin, h, w, dtype=torch.float64)
    weight = torch.randn(cout, cin, k, k, dtype=torch.float64) / (k * k * cin) ** 0.5
    bias = torch.randn(cout, dtype=torch.float64)
    return x, weight, bias, torch.randn_like(F.conv2d(x, weight, bias, padding=padding)), padding


@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=str)
def test_matches_torch_in_float64(case):
    x, weight, bias, grad_y, padding = case_tensors(case)
    ours = run(lambda a, b, c: zoo.ops.conv2d(a, b, c, padding=padding), x, weight, bias, grad_y)
    ref = run(lambda a, b, c: F.conv2d(a, b, c, padding=padding), x, weight, bias, grad_y)
    for o, r in zip(ours, ref):
        assert_close(o, r, scale=10)


# Rows wider than the 32 vector lanes of the float32 row gather/scatter (the scalar path).
WIDE_CASES = [(2, 16, 5, 40, 16, 3, (1, 1)), (2, 16, 6, 33, 16, 5, (2, 2)), (2, 16, 4, 29, 16, 5, (1, 4))]


@pytest.mark.parametrize("case", WINOGRAD_CASES + WIDE_CASES, ids=str)
def test_float32_matches_the_float64_reference(case):
    """float32 has its own data movement (AVX-512 row gathers and scatters): every position lands right."""
    x, weight, bias, grad_y, padding = case_tensors(case)
    ref = run(lambda a, b, c: F.conv2d(a, b, c, padding=padding), x, weight, bias, grad_y)
    ours = run(lambda a, b, c: zoo.ops.conv2d(a, b, c, padding=padding), *(t.float() for t in (x, weight, bias, grad_y)))
    for name, o, r in zip(("y", "dx", "dw", "db"), ours, ref):
        error = (o.double() - r).abs().max() / r.abs().max()
        assert error < 1e-4, (name, error.item())


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("mask", [(True, False, False), (False, True, False), (False, False, True), (False, True, True)])
def test_output_mask_subsets(mask, k):
    x, weight = torch.randn(4, 16, 8, 8, dtype=torch.float64), torch.randn(16, 16, k, k, dtype=torch.float64)
    grad_y = torch.randn(4, 16, 8, 8, dtype=torch.float64)
    p = k // 2
    dx, dw, db = torch.ops.zoo.conv2d_backward(grad_y, x, weight, [1, 1], [p, p], [1, 1], list(mask))
    x.requires_grad_(), weight.requires_grad_()
    bias = torch.zeros(16, dtype=torch.float64, requires_grad=True)
    ref = torch.autograd.grad(F.conv2d(x, weight, bias, padding=p), (x, weight, bias), grad_y)
    for needed, ours, expected in zip(mask, (dx, dw, db), ref):
        if needed:
            assert_close(ours, expected, scale=10)
        else:
            assert ours.numel() == 0


@pytest.mark.parametrize("k", [3, 5])
def test_gradcheck(k):
    x = torch.randn(8, 16, 4, 3, dtype=torch.float64, requires_grad=True)  # 8 images x 4 tiles
    weight = torch.randn(16, 16, k, k, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(16, dtype=torch.float64, requires_grad=True)
    p = k // 2
    assert algorithm(8, 16, 4, 3, 16, kernel=(k, k), padding=(p, p)) == "winograd"
    assert gradcheck(lambda a, b, c: zoo.ops.conv2d(a, b, c, padding=p), (x, weight, bias))


@pytest.mark.parametrize("k", [3, 5])
def test_opcheck(k):
    x, weight, bias = torch.randn(4, 16, 8, 8), torch.randn(16, 16, k, k), torch.randn(16)
    p = [k // 2] * 2
    torch.library.opcheck(torch.ops.zoo.conv2d.default, (x, weight, bias, [1, 1], p, [1, 1]))
    grad_y = torch.randn(4, 16, 8, 8)
    torch.library.opcheck(torch.ops.zoo.conv2d_backward.default, (grad_y, x, weight, [1, 1], p, [1, 1], [True] * 3))


@pytest.mark.parametrize("case", [(16, 32, 14, 14, 64, 3), (8, 192, 8, 8, 192, 3), (8, 96, 16, 16, 192, 5)], ids=str)
def test_float32_error_is_close_to_torchs_own(case):
    """Winograd adds roundings in its transforms: in float32, against a float64 reference,
    its error stays within a factor of torch's own float32 convolution's: 4 for F(2x2, 3x3)
    (measured: at most 3x), 40 for F(2x2, 5x5), whose transforms multiply by up to 5 and
    divide by 24 (measured: 10-30x, about 1e-5 of the largest value)."""
    n, cin, h, w, cout, k = case
    factor = 4 if k == 3 else 40
    p = k // 2
    x = torch.randn(n, cin, h, w, dtype=torch.float64)
    weight = torch.randn(cout, cin, k, k, dtype=torch.float64) / (k * k * cin) ** 0.5
    bias = torch.randn(cout, dtype=torch.float64)
    grad_y = torch.randn(n, cout, h, w, dtype=torch.float64)
    exact = run(lambda a, b, c: F.conv2d(a, b, c, padding=p), x, weight, bias, grad_y)
    as32 = [t.float() for t in (x, weight, bias, grad_y)]
    ours = run(lambda a, b, c: zoo.ops.conv2d(a, b, c, padding=p), *as32)
    torchs = run(lambda a, b, c: F.conv2d(a, b, c, padding=p), *as32)
    for name, e, o, t in zip(("y", "dx", "dw", "db"), exact, ours, torchs):
        scale = e.abs().max()
        our_error, torch_error = ((o.double() - e).abs().max() / scale, (t.double() - e).abs().max() / scale)
        assert our_error < max(factor * torch_error, 1e-6), f"{name}: {our_error:.2e} vs torch {torch_error:.2e}"
