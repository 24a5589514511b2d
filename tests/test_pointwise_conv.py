"""The CPU convolution's pointwise float32 kernels (1x1 layers as one matrix product per
image, where our product kernel replaces MKL) against a float64 reference: which layers
take them, and forward, input, weight and bias gradients over shapes that exercise the
product kernel's row, column and depth tails."""

import pytest
import torch
import torch.nn.functional as F

import zoo


def algorithm(x_shape, w_shape, stride=(1, 1), padding=(0, 0), dtype=torch.float32):
    x, weight = torch.empty(*x_shape, device="meta", dtype=dtype), torch.empty(*w_shape, device="meta", dtype=dtype)
    return zoo._C.conv2d_cpu_algorithm(x, weight, list(stride), list(padding), [1, 1])


pytestmark = pytest.mark.skipif(
    algorithm((1, 16, 8, 8), (16, 16, 1, 1)) != "pointwise",
    reason="the pointwise kernels need an AVX-512 build on a CPU where our product kernel replaces MKL",
)


def test_which_layers_take_them():
    assert algorithm((128, 192, 8, 8), (192, 192, 1, 1)) == "pointwise"  # NIN's 1x1 layers
    assert algorithm((128, 192, 8, 8), (192, 192, 1, 1), dtype=torch.float64) == "im2col"
    assert algorithm((128, 192, 8, 8), (192, 192, 1, 1), stride=(2, 2)) == "im2col"
    assert algorithm((128, 192, 8, 8), (192, 192, 1, 1), padding=(1, 1)) == "im2col"
    assert algorithm((128, 3, 8, 8), (16, 3, 1, 1)) == "direct"  # few input channels: the direct kernel


# (N, Cin, H, W, Cout): NIN's shapes, rows (Cout, Cin) not multiples of the 12-row
# register block, columns (H W) not multiples of 32, more than 256 input channels (two
# depth blocks), a single pixel, one image (its columns split over tasks of 256, the
# last one shorter), outputs large enough to be streamed to memory.
CASES = [
    (4, 192, 8, 8, 192),
    (3, 17, 5, 7, 10),
    (2, 9, 1, 1, 3),
    (2, 33, 3, 11, 40),
    (1, 16, 32, 32, 20),
    (1, 12, 17, 19, 14),
    (3, 300, 2, 3, 13),
    # outputs of 32 MiB or more, written with non-temporal stores: rows 64-byte aligned, and not (63 x 65)
    (32, 16, 64, 64, 64),
    (32, 16, 63, 65, 64),
]


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_the_float64_reference(case, with_bias):
    n, cin, h, w, cout = case
    assert algorithm((n, cin, h, w), (cout, cin, 1, 1)) == "pointwise"
    x = torch.randn(n, cin, h, w, dtype=torch.float64)
    weight = torch.randn(cout, cin, 1, 1, dtype=torch.float64) / cin**0.5
    bias = torch.randn(cout, dtype=torch.float64) if with_bias else None
    grad_y = torch.randn(n, cout, h, w, dtype=torch.float64)
    tensors = [x, weight] + ([bias] if with_bias else [])

    def run(conv, dtype):
        inputs = [t.detach().to(dtype).requires_grad_() for t in tensors]
        y = conv(*inputs) if with_bias else conv(*inputs, None)
        return [y, *torch.autograd.grad(y, inputs, grad_y.to(dtype))]

    exact = run(F.conv2d, torch.float64)
    ours = run(zoo.ops.conv2d, torch.float32)
    for name, o, r in zip(("y", "dx", "dw", "db"), ours, exact):
        assert o.dtype == torch.float32 and o.shape == r.shape, name
        error = (o.double() - r).abs().max() / r.abs().max()
        assert error < 1e-5, (name, error.item())


def test_only_the_gradients_asked_for():
    x, weight = torch.randn(2, 24, 4, 4, requires_grad=True), torch.randn(16, 24, 1, 1)
    (grad_x,) = torch.autograd.grad(zoo.ops.conv2d(x, weight).sum(), (x,))
    torch.testing.assert_close(grad_x, torch.autograd.grad(F.conv2d(x, weight).sum(), (x,))[0])
    x, weight = torch.randn(2, 24, 4, 4), torch.randn(16, 24, 1, 1, requires_grad=True)
    (grad_w,) = torch.autograd.grad(zoo.ops.conv2d(x, weight).sum(), (weight,))
    torch.testing.assert_close(grad_w, torch.autograd.grad(F.conv2d(x, weight).sum(), (weight,))[0])
