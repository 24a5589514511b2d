"""zoo conv2d against torch's own: forward and every gradient over a grid of geometries."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck

import zoo
from conftest import assert_close

# (N, Cin, H, W, Cout, kernel, stride, padding, dilation): the zoo models' layers first.
ZOO_LAYERS = [
    (100, 1, 28, 28, 5, (5, 5), 1, 0, 1),  # EMNIST CNN conv1
    (100, 5, 12, 12, 10, (5, 5), 1, 0, 1),  # EMNIST CNN conv2
    (100, 4, 28, 28, 4, (3, 3), 1, 1, 1),  # MNIST CNN
    (2, 3, 32, 32, 192, (5, 5), 1, 2, 1),  # NIN block 1
    (2, 192, 16, 16, 160, (1, 1), 1, 0, 1),  # NIN 1x1
    (2, 96, 16, 16, 192, (5, 5), 1, 2, 1),  # NIN block 2
    (2, 192, 8, 8, 192, (3, 3), 1, 1, 1),  # NIN block 3
]
EDGE_CASES = [
    (1, 1, 1, 1, 1, (1, 1), 1, 0, 1),
    (257, 2, 5, 5, 3, (3, 3), 1, 1, 1),
    (3, 3, 9, 11, 4, (3, 5), (2, 3), (1, 2), (2, 1)),
    (2, 2, 7, 6, 3, (2, 2), 3, 2, 1),
    (2, 3, 10, 10, 2, (3, 3), 1, 0, 4),
    (1, 4, 5, 13, 6, (5, 1), (1, 4), (2, 0), 1),
    (2, 3, 6, 6, 2, (1, 1), 2, 1, 1),  # 1x1 that is not pointwise
    (2, 5, 4, 4, 7, (4, 4), 1, 0, 1),  # kernel covers the image
    (9, 8, 4, 4, 6, (1, 1), 1, 0, 1),  # pointwise, images grouped per GEMM with a smaller last group
    (37, 3, 6, 5, 4, (3, 2), (2, 1), 1, 1),  # grouped images, smaller last group
]


def torch_grads(fn, x, weight, bias, grad_y, want_dx=True):
    x = x.detach().clone().requires_grad_(want_dx)
    weight = weight.detach().clone().requires_grad_()
    bias = bias.detach().clone().requires_grad_() if bias is not None else None
    y = fn(x, weight, bias)
    y.backward(grad_y)
    return y.detach(), x.grad, weight.grad, bias.grad if bias is not None else None


def check_against_torch(case, dtype, with_bias=True, want_dx=True):
    n, cin, h, w, cout, kernel, stride, padding, dilation = case
    x = torch.randn(n, cin, h, w, dtype=dtype)
    weight = torch.randn(cout, cin, *kernel, dtype=dtype) / (cin * kernel[0] * kernel[1]) ** 0.5
    bias = torch.randn(cout, dtype=dtype) if with_bias else None
    y_ref = F.conv2d(x, weight, bias, stride, padding, dilation)
    grad_y = torch.randn_like(y_ref)
    ours = torch_grads(lambda a, b, c: zoo.ops.conv2d(a, b, c, stride, padding, dilation), x, weight, bias, grad_y, want_dx)
    ref = torch_grads(lambda a, b, c: F.conv2d(a, b, c, stride, padding, dilation), x, weight, bias, grad_y, want_dx)
    for o, r in zip(ours, ref):
        assert (o is None) == (r is None)
        if r is not None:
            assert_close(o, r, scale=10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", ZOO_LAYERS + EDGE_CASES, ids=str)
def test_matches_torch(case, dtype):
    check_against_torch(case, dtype)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("want_dx", [True, False])
def test_output_mask_subsets(with_bias, want_dx):
    check_against_torch((3, 2, 7, 7, 3, (3, 3), 2, 1, 1), torch.float64, with_bias, want_dx)


@pytest.mark.parametrize(
    "stride,padding,dilation",
    list(itertools.product([1, 2, 3], [0, 1, 2], [1, 2])),
)
def test_every_stride_padding_dilation(stride, padding, dilation):
    check_against_torch((2, 3, 11, 10, 4, (3, 3), stride, padding, dilation), torch.float64)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 5), cin=st.integers(1, 6), cout=st.integers(1, 6),
    h=st.integers(1, 12), w=st.integers(1, 12),
    kh=st.integers(1, 5), kw=st.integers(1, 5),
    sh=st.integers(1, 3), sw=st.integers(1, 3),
    ph=st.integers(0, 3), pw=st.integers(0, 3),
    dh=st.integers(1, 3), dw=st.integers(1, 3),
)
def test_random_geometry_matches_torch(n, cin, cout, h, w, kh, kw, sh, sw, ph, pw, dh, dw):
    if h + 2 * ph < dh * (kh - 1) + 1 or w + 2 * pw < dw * (kw - 1) + 1:
        return  # no output: covered by the bad-input tests
    check_against_torch((n, cin, h, w, cout, (kh, kw), (sh, sw), (ph, pw), (dh, dw)), torch.float64)


@pytest.mark.parametrize("case", [(2, 3, 6, 7, 2, (3, 3), 1, 1, 1), (2, 2, 7, 6, 3, (2, 3), (2, 1), (1, 0), (1, 2)), (2, 4, 3, 3, 3, (1, 1), 1, 0, 1)], ids=str)
def test_gradcheck(case):
    n, cin, h, w, cout, kernel, stride, padding, dilation = case
    x = torch.randn(n, cin, h, w, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(cout, cin, *kernel, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(cout, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda a, b, c: zoo.ops.conv2d(a, b, c, stride, padding, dilation), (x, weight, bias))


def test_opcheck():
    x = torch.randn(3, 2, 7, 6, requires_grad=True)
    weight = torch.randn(4, 2, 3, 3, requires_grad=True)
    bias = torch.randn(4, requires_grad=True)
    torch.library.opcheck(torch.ops.zoo.conv2d.default, (x, weight, bias, [2, 1], [1, 0], [1, 2]))
    torch.library.opcheck(torch.ops.zoo.conv2d.default, (x, weight, None, [1, 1], [0, 0], [1, 1]))
    grad_y = torch.randn(3, 4, 7, 6)
    for mask in ([True, True, True], [False, True, False]):
        torch.library.opcheck(torch.ops.zoo.conv2d_backward.default, (grad_y, x.detach(), weight.detach(), [1, 1], [1, 1], [1, 1], mask))


def test_channels_last_and_unbatched_input():
    layer = torch.nn.Conv2d(3, 5, 3, padding=1).double()
    ours = zoo.nn.Conv2d(3, 5, 3, padding=1).double()
    ours.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    assert_close(ours(x.contiguous(memory_format=torch.channels_last)), layer(x))
    assert_close(ours(x[0]), layer(x[0]))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3, padding="same"),
        dict(kernel_size=4, padding="same", dilation=1),
        dict(kernel_size=(2, 3), padding="same", dilation=(3, 2)),
        dict(kernel_size=3, padding="valid", stride=2),
        dict(kernel_size=3, padding=2, padding_mode="reflect"),
        dict(kernel_size=3, padding=(1, 2), padding_mode="circular"),
        dict(kernel_size=3, padding=1, padding_mode="replicate", bias=False),
    ],
    ids=str,
)
def test_layer_is_drop_in_for_torch(kwargs):
    ref = torch.nn.Conv2d(3, 4, **kwargs).double()
    ours = zoo.nn.Conv2d(3, 4, **kwargs).double()
    ours.load_state_dict(ref.state_dict())
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64)
    assert_close(ours(x), ref(x))


def test_layer_rejects_groups():
    with pytest.raises(NotImplementedError, match="groups=2"):
        zoo.nn.Conv2d(4, 4, 3, groups=2)


@pytest.mark.parametrize(
    "case",
    [
        ((1, 4, 400, 400), (3, 3, 3), 1, 1, 1),  # (Cout, kh, kw), stride, padding, dilation
        ((2, 4, 401, 399), (2, 3, 5), 2, 3, 2),
        ((1, 64, 300, 300), (3, 1, 1), 1, 0, 1),  # pointwise: the pixels are the columns
    ],
    ids=str,
)
def test_images_too_large_for_one_buffer_go_in_row_blocks(case):
    # One image's column matrix is > 16 MiB in float64 here, so the kernel splits it into blocks of output rows.
    shape, (cout, kh, kw), stride, padding, dilation = case
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(cout, shape[1], kh, kw, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(cout, dtype=torch.float64, requires_grad=True)
    grad_y = torch.randn_like(torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation))
    ours = torch_grads(lambda a, b, c: zoo.ops.conv2d(a, b, c, stride, padding, dilation), x, weight, bias, grad_y, True)
    ref = torch_grads(lambda a, b, c: torch.nn.functional.conv2d(a, b, c, stride, padding, dilation), x, weight, bias, grad_y, True)
    for o, r in zip(ours, ref):
        assert_close(o, r, scale=10)


def test_no_grad_calls_build_no_graph_and_match():
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        y = zoo.ops.conv2d(x, weight, bias, padding=1)
        expected = F.conv2d(x, weight, bias, padding=1)
    assert y.grad_fn is None and not y.requires_grad
    torch.testing.assert_close(y, expected)
    # Only the bias asks for a gradient: the autograd node is still built, for it alone.
    y = zoo.ops.conv2d(x, weight.detach(), bias, padding=1)
    y.sum().backward()
    torch.testing.assert_close(bias.grad, torch.full_like(bias, 2 * 6 * 6))
