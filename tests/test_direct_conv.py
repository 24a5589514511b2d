"""The CPU convolution's direct float32 kernel for few input channels (the presets' first
layers) against torch, with a float64 reference: which layers take it, forward with
every output-channel grouping and column tail, and the gradients that follow it."""

import pytest
import torch
import torch.nn.functional as F

import zoo

pytestmark = pytest.mark.skipif(
    zoo._C.conv2d_cpu_algorithm(
        torch.empty(1, 1, 8, 8, device="meta"), torch.empty(4, 1, 3, 3, device="meta"), [1, 1], [1, 1], [1, 1]
    )
    != "direct",
    reason="the direct kernel needs an AVX-512 build",
)


def algorithm(x_shape, w_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1), dtype=torch.float32):
    x, weight = torch.empty(*x_shape, device="meta", dtype=dtype), torch.empty(*w_shape, device="meta", dtype=dtype)
    return zoo._C.conv2d_cpu_algorithm(x, weight, list(stride), list(padding), list(dilation))


def test_which_layers_take_it():
    assert algorithm((128, 1, 28, 28), (32, 1, 3, 3), padding=(1, 1)) == "direct"  # mnist_cnn_32_64
    assert algorithm((128, 5, 12, 12), (10, 5, 5, 5)) == "direct"  # emnist_cnn_2conv
    assert algorithm((128, 5, 12, 12), (10, 5, 5, 5), dtype=torch.float64) == "im2col"
    assert algorithm((128, 5, 12, 12), (10, 5, 5, 5), stride=(2, 2)) == "im2col"
    assert algorithm((128, 5, 12, 12), (10, 5, 5, 5), dilation=(1, 2)) == "im2col"
    assert algorithm((128, 9, 12, 12), (10, 9, 3, 3)) == "im2col"  # more than 8 input channels
    assert algorithm((128, 3, 32, 32), (192, 3, 5, 5), padding=(2, 2)) == "direct"  # NIN's input layer
    assert algorithm((128, 3, 32, 32), (384, 3, 5, 5), padding=(2, 2)) == "direct"  # nin_maxout's
    assert algorithm((128, 3, 32, 32), (385, 3, 5, 5), padding=(2, 2)) == "im2col"  # wider than measured


# (N, Cin, H, W, Cout, kernel, padding): output channels in one, two and four groups of
# 16 and a remainder, output rows shorter and longer than 16 (masked tails), padding.
CASES = [
    (3, 1, 28, 28, 32, (3, 3), (1, 1)),
    (2, 5, 12, 12, 10, (5, 5), (0, 0)),
    (2, 3, 9, 20, 17, (3, 5), (1, 2)),
    (2, 8, 5, 37, 64, (3, 3), (2, 2)),
    (1, 2, 1, 1, 3, (1, 1), (0, 0)),
    (2, 1, 4, 4, 5, (4, 4), (0, 0)),
    (4, 4, 14, 14, 4, (3, 3), (1, 1)),
    (2, 3, 11, 13, 200, (5, 5), (2, 2)),  # NIN-like first layer: 12 groups of 16 and a remainder
]


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_forward_matches_float64_reference(case, with_bias):
    n, cin, h, w, cout, kernel, padding = case
    assert algorithm((n, cin, h, w), (cout, cin, *kernel), padding=padding) == "direct"
    x, weight = torch.randn(n, cin, h, w), torch.randn(cout, cin, *kernel)
    bias = torch.randn(cout) if with_bias else None
    exact = F.conv2d(x.double(), weight.double(), bias.double() if with_bias else None, padding=padding)
    ours = zoo.ops.conv2d(x, weight, bias, padding=padding)
    assert ours.dtype == torch.float32 and ours.shape == exact.shape
    # float32 sums of cin * kh * kw products: a few ulp of the largest term
    tolerance = 1e-6 * cin * kernel[0] * kernel[1] * (x.abs().max() * weight.abs().max()).item() + 1e-6
    assert (ours.double() - exact).abs().max().item() < tolerance


def test_gradients_after_a_direct_forward_match_torch():
    x = torch.randn(4, 5, 12, 12, dtype=torch.float32, requires_grad=True)
    weight = torch.randn(10, 5, 5, 5, requires_grad=True)
    bias = torch.randn(10, requires_grad=True)
    grad_y = torch.randn(4, 10, 8, 8)
    ours = torch.autograd.grad(zoo.ops.conv2d(x, weight, bias), (x, weight, bias), grad_y)
    ref = torch.autograd.grad(F.conv2d(x, weight, bias), (x, weight, bias), grad_y)
    for o, r in zip(ours, ref):
        torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-4)


def check_gradient_against_float64(case, index):
    """zoo's gradient ``index`` (0: dx, 1: dw) of a stride-1 layer against torch's in float64, asked for alone
    and with the others; the bound is a few ulp of the largest partial sum of float32 products."""
    n, cin, h, w, cout, kernel, padding = case
    x, weight = torch.randn(n, cin, h, w), torch.randn(cout, cin, *kernel)
    ho, wo = h + 2 * padding[0] - kernel[0] + 1, w + 2 * padding[1] - kernel[1] + 1
    grad_y = torch.randn(n, cout, ho, wo)
    alone = [i == index for i in range(3)]
    exact = torch.ops.aten.convolution_backward(grad_y.double(), x.double(), weight.double(), None, [1, 1],
                                                list(padding), [1, 1], False, [0, 0], 1, alone)[index]
    if index == 0:  # sums over cout * kh * kw products of dy and weight
        tolerance = 1e-6 * cout * kernel[0] * kernel[1] * (grad_y.abs().max() * weight.abs().max()).item() + 1e-6
    else:  # sums over n * ho * wo products of dy and x
        tolerance = 1e-6 * n * ho * wo * (x.abs().max() * grad_y.abs().max()).item() + 1e-6
    for mask in (alone, [True, True, True]):
        ours = torch.ops.zoo.conv2d_backward(grad_y, x, weight, [1, 1], list(padding), [1, 1], mask)[index]
        assert ours.dtype == torch.float32 and ours.shape == exact.shape
        assert (ours.double() - exact).abs().max().item() < tolerance


@pytest.mark.parametrize("case", CASES, ids=str)
def test_weight_gradient_matches_float64_reference(case):
    # The direct kernel's own weight gradient: every output-channel block (of 4) and tap block (of 6)
    # remainder, rows shorter and longer than 16, padding.
    check_gradient_against_float64(case, 1)


def test_first_layer_weight_gradient_in_a_training_step_matches_torch():
    # As in a model's first layer: the input needs no gradient, only the weight and bias do.
    x = torch.randn(8, 1, 28, 28)
    ours = zoo.nn.Conv2d(1, 5, 5)
    ref = torch.nn.Conv2d(1, 5, 5)
    ref.load_state_dict(ours.state_dict())
    grad_y = torch.randn(8, 5, 24, 24)
    ours(x).backward(grad_y)
    ref(x).backward(grad_y)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)


# Layers whose input gradient the direct kernel computes (<= 16 output channels, padding <= kernel - 1),
# and two that fall back to im2col's (17 output channels; padding 3 with a 3x3 kernel).
INPUT_GRAD_CASES = [case for case in CASES if case[4] <= 16] + [
    (2, 3, 7, 19, 16, (3, 3), (2, 2)),
    (2, 2, 6, 33, 7, (2, 5), (1, 4)),
    (2, 3, 9, 20, 17, (3, 5), (1, 2)),
    (2, 2, 5, 5, 3, (3, 3), (3, 3)),
]


@pytest.mark.parametrize("case", INPUT_GRAD_CASES, ids=str)
def test_input_gradient_matches_float64_reference(case):
    check_gradient_against_float64(case, 0)
