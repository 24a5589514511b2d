"""Element-wise activations on zoo's kernels (torch.ops.zoo.activation, zoo.ops.elu, zoo.nn.ELU) against torch's."""

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import zoo
from conftest import assert_close, values_and_grad

# name -> (alpha used here, torch's form)
ACTIVATIONS = {
    "relu": (0.0, lambda x, alpha: F.relu(x)),
    "leaky_relu": (0.2, F.leaky_relu),
    "elu": (1.3, F.elu),
}
SHAPES = [(), (0,), (7,), (3, 0, 2), (64, 33), (4, 6, 5, 7), (2, 3, 4, 5, 6)]


def ours(activation, x, alpha=None):
    return torch.ops.zoo.activation(x, activation, ACTIVATIONS[activation][0] if alpha is None else alpha)


def theirs(activation, x, alpha=None):
    default, function = ACTIVATIONS[activation]
    return function(x, default if alpha is None else alpha)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_torch(activation, dtype, shape):
    x = torch.randn(shape, dtype=dtype) * 3
    grad_y = torch.randn(shape, dtype=dtype)
    y, dx = values_and_grad(lambda a: ours(activation, a), x, grad_y)
    ref, ref_dx = values_and_grad(lambda a: theirs(activation, a), x, grad_y)
    if activation == "elu":  # zoo's exponentials against torch's: a few ulp
        assert_close(y, ref)
        assert_close(dx, ref_dx)
    else:
        assert torch.equal(y, ref) and torch.equal(dx, ref_dx)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("layout", ["channels_last", "transposed", "sliced"])
def test_layouts(activation, layout):
    x = torch.randn(6, 5, 7, 8, dtype=torch.float64)
    x = {"channels_last": x.contiguous(memory_format=torch.channels_last), "transposed": x.transpose(1, 3),
         "sliced": x[:, ::2]}[layout]
    grad_y = torch.randn(x.shape, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    y, dx = values_and_grad(lambda a: ours(activation, a), x, grad_y)
    ref, ref_dx = values_and_grad(lambda a: theirs(activation, a), x, grad_y)
    assert_close(y, ref)
    assert_close(dx, ref_dx)
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_large_float32_output_streamed(activation):
    # Over 32 MiB of float32 the forward writes with non-temporal stores (cpu/streaming.h), in parallel
    # tasks whose bounds need not be 64-byte aligned; an odd size leaves a tail after the last full vector.
    x = torch.randn(65, 128, 31, 33) * 3
    x.view(-1)[-3:] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    y, ref = ours(activation, x), theirs(activation, x)
    if activation == "elu":
        torch.testing.assert_close(y, ref, equal_nan=True)
    else:
        assert torch.equal(y.isnan(), ref.isnan()) and torch.equal(y.nan_to_num(), ref.nan_to_num())


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("alpha", [0.0, -0.5, 2.5])
def test_nan_infinities_and_other_parameters(activation, alpha):
    special = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, -1e-30, 1e-30, -100.0, -800.0, 3.0]
    x = torch.tensor(special * 32, dtype=torch.float64)
    grad_y = torch.ones_like(x)
    y, dx = values_and_grad(lambda a: ours(activation, a, alpha), x, grad_y)
    ref, ref_dx = values_and_grad(lambda a: theirs(activation, a, alpha), x, grad_y)
    torch.testing.assert_close(y, ref, equal_nan=True)
    # torch's vectorised loop, not the scalar one it runs for a tensor's last few values (whose ELU gradient at
    # NaN is dy rather than NaN): the first 288 values
    torch.testing.assert_close(dx[:288], ref_dx[:288], equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_elu_over_its_whole_range(dtype):
    x = torch.cat([-torch.logspace(-30, 3, 4000, dtype=torch.float64), torch.linspace(-5, 5, 2001,
                                                                                      dtype=torch.float64)]).to(dtype)
    rtol = 4e-7 if dtype == torch.float32 else 1e-15
    torch.testing.assert_close(zoo.ops.elu(x, 1.3), F.elu(x, 1.3), rtol=rtol, atol=0)
    y = torch.ones_like(x)
    dx = torch.ops.zoo.activation_backward(y, x, "elu", 1.3)
    ref = torch.ops.aten.elu_backward(y, 1.3, 1, 1, False, x)
    # below exp's normal range (v < -87 in float32, -708 in float64) zoo's exp is 0, torch's subnormal
    torch.testing.assert_close(dx, ref, rtol=rtol, atol=1.5e-38 * 1.3 if dtype == torch.float32 else 1e-300)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradcheck(activation):
    x = torch.randn(4, 3, 5, dtype=torch.float64) * 2
    x = x[x.abs() > 0.05].reshape(-1)[:40].requires_grad_()  # away from the kink at 0
    assert gradcheck(lambda a: ours(activation, a), (x,))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_opcheck(activation):
    alpha = ACTIVATIONS[activation][0]
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    channels_last = torch.randn(4, 3, 5, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    for args in [(x, activation, alpha), (channels_last, activation, alpha), (torch.randn(0, 3), activation, alpha)]:
        torch.library.opcheck(torch.ops.zoo.activation.default, args)
    torch.library.opcheck(torch.ops.zoo.activation_backward.default,
                          (torch.randn(4, 3, 5, 5), x.detach(), activation, alpha))


def test_errors_are_named():
    with pytest.raises(TypeError, match="zoo activation: expected float32 or float64, got torch.float16"):
        zoo.ops.elu(torch.randn(3, dtype=torch.float16))
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        torch.ops.zoo.activation(torch.randn(3), "gelu")
    with pytest.raises(ValueError, match="grad_y has shape"):
        torch.ops.zoo.activation_backward(torch.randn(4), torch.randn(3), "elu", 1.0)


def test_layer_is_drop_in_for_torch_elu():
    ours_layer, torch_layer = zoo.nn.ELU(0.7), torch.nn.ELU(0.7)
    assert repr(ours_layer) == repr(torch_layer) and not ours_layer.state_dict()
    x = torch.randn(8, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert_close(ours_layer(x), torch_layer(x))
    inplace = zoo.nn.ELU(0.7, inplace=True)
    y = x.detach().clone()
    assert inplace(y) is y and torch.allclose(y, torch_layer(x))


def test_compiles_and_exports():
    layer = zoo.nn.ELU(1.1)
    x = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(torch.compile(layer, fullgraph=True)(x), layer(x))
    program = torch.export.export(layer, (x,))
    torch.testing.assert_close(program.module()(x), layer(x))
