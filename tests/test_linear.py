"""zoo's linear layer (zoo.ops.linear, zoo.nn.Linear) against torch's F.linear: float64 references, gradients,
every kernel (dot products, register blocks, torch's BLAS), torch's argument forms, errors, compile and export."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

import zoo
from conftest import onnx_round_trip, values_and_grad
from zoo import _C

# (N, in, out): batch-1 and few-row products (the dot kernel), one 10-class layer, the presets' hidden and head
# layers (register blocks), tails of every blocking (rows past 12, columns past 32, depth past 256 and 16).
SHAPES = [(1, 784, 1024), (3, 100, 47), (8, 33, 7), (128, 512, 10), (128, 784, 100), (100, 3072, 50), (13, 257, 33),
          (12, 16, 16), (37, 300, 65), (128, 1, 5), (2, 5, 1), (25, 17, 16)]


def linear_and_grads(fn, x, weight, bias, grad_y):
    """fn(x, weight, bias) and the gradients of its three inputs for the output gradient grad_y."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
    y = fn(*leaves)
    y.backward(grad_y)
    return [y.detach()] + [t.grad for t in leaves]


def error_bounds(x, weight, grad_y):
    """Per-element bounds on float32 rounding of y, dx, dweight, dbias: (terms + 2) u times the sums of |terms|."""
    u = torch.finfo(torch.float32).eps
    x, weight, grad_y = x.double().abs(), weight.double().abs(), grad_y.double().abs()
    n, c = x.shape
    o = weight.shape[0]
    return [(c + 2) * u * (x @ weight.T + 1), (o + 2) * u * (grad_y @ weight), (n + 2) * u * (grad_y.T @ x),
            (n + 2) * u * grad_y.sum(0)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_float32_within_rounding_bounds_of_float64_torch(shape):
    n, c, o = shape
    x, weight, bias = torch.randn(n, c), torch.randn(o, c) / c**0.5, torch.randn(o)
    grad_y = torch.randn(n, o)
    ours = linear_and_grads(zoo.ops.linear, x, weight, bias, grad_y)
    exact = linear_and_grads(F.linear, x.double(), weight.double(), bias.double(), grad_y.double())
    for name, o32, r64, bound in zip(("y", "dx", "dweight", "dbias"), ours, exact, error_bounds(x, weight, grad_y)):
        assert o32.dtype == torch.float32 and o32.shape == r64.shape
        excess = (o32.double() - r64).abs() - bound
        assert excess.max() <= 0, f"{name}: error past the bound by {excess.max():.3g}"


@pytest.mark.parametrize("shape", SHAPES[:6], ids=str)
def test_float64_equals_torch(shape):
    n, c, o = shape
    x, weight, bias = (torch.randn(s, dtype=torch.float64) for s in ((n, c), (o, c), (o,)))
    grad_y = torch.randn(n, o, dtype=torch.float64)
    for a, b in zip(linear_and_grads(zoo.ops.linear, x, weight, bias, grad_y),
                    linear_and_grads(F.linear, x, weight, bias, grad_y)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_each_cpu_kernel_is_reached_where_it_applies():
    algorithm = lambda n, c, o, dtype=torch.float32: _C.linear_cpu_algorithm(  # noqa: E731
        torch.empty(n, c, dtype=dtype, device="meta"), torch.empty(o, c, dtype=dtype, device="meta"))
    assert algorithm(128, 784, 100, torch.float64) == ("blas", "blas", "blas")
    assert algorithm(0, 784, 100) == ("blas", "blas", "blas")
    assert algorithm(4, 0, 100) == ("blas", "blas", "blas")
    own = algorithm(128, 784, 100)
    if own[0] == "blas":
        pytest.skip("torch's MKL runs its best code on this CPU: zoo's products stay off (see csrc/cpu/own_product.h)")
    assert own == ("blocks", "blocks", "blocks")
    assert algorithm(1, 784, 1024) == ("dot", "blas", "blocks")  # batch-1 inference; the backward's dx is tiny
    assert algorithm(128, 512, 10)[0] == "dot"


def test_non_contiguous_inputs_and_no_bias():
    x = torch.randn(40, 20, dtype=torch.float64).T  # (20, 40), column-major
    weight = torch.randn(30, 80, dtype=torch.float64)[:, ::2]
    grad_y = torch.randn(20, 30, dtype=torch.float64)
    for fn in (lambda a, w: zoo.ops.linear(a, w), lambda a, w: zoo.ops.linear(a, w, None)):
        ours = values_and_grad(lambda a: fn(a, weight), x, grad_y)
        ref = values_and_grad(lambda a: F.linear(a, weight), x, grad_y)
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("input_shape,weight_shape,bias_shape", [
    ((5,), (4, 5), (4,)), ((2, 3, 5), (4, 5), (4,)), ((2, 3, 1, 5), (4, 5), None), ((6, 5), (5,), None),
    ((5,), (5,), None), ((5,), (5,), ()), ((2, 3, 5), (5,), ()), ((6, 5), (4, 5), ()), ((2, 3, 5), (4, 5), (2, 3, 4)), ((6, 5), (4, 5), (1,)), ((6, 5), (4, 5), (6, 4)), ((0, 5), (4, 5), (4,)),
    ((6, 0), (4, 0), (4,)), ((6, 5), (0, 5), (0,)),
], ids=str)
def test_accepts_what_torch_accepts(input_shape, weight_shape, bias_shape):
    x = torch.randn(input_shape, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(weight_shape, dtype=torch.float64, requires_grad=True)
    bias = None if bias_shape is None else torch.randn(bias_shape, dtype=torch.float64, requires_grad=True)
    inputs = [t for t in (x, weight, bias) if t is not None]
    ours, ref = zoo.ops.linear(x, weight, bias), F.linear(x, weight, bias)
    torch.testing.assert_close(ours, ref)
    grad_y = torch.randn(ref.shape, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(ours, inputs, grad_y), torch.autograd.grad(ref, inputs, grad_y)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("call,error,match", [
    (lambda: zoo.ops.linear(torch.randn(3, 5), torch.randn(4, 6)), ValueError,
     r"x has 5 features \(shape \[3, 5\]\) but weight of shape \[4, 6\] expects 6"),
    (lambda: zoo.ops.linear(torch.randn(3, 5), torch.randn(4, 5), torch.randn(3)), ValueError,
     r"bias of shape \(3,\) does not expand to the output's shape \(3, 4\)"),
    (lambda: zoo.ops.linear(torch.randn(3, 5), torch.randn(4, 5).double()), TypeError,
     "weight has dtype torch.float64 but x has dtype torch.float32"),
    (lambda: zoo.ops.linear(torch.randn(3, 5), torch.randn(4, 5), torch.randn(4).double()), TypeError,
     "bias has dtype torch.float64"),
    (lambda: zoo.ops.linear(torch.randn(3, 5), torch.randn(4, 5), torch.randn(1).double()), TypeError,
     "bias has dtype torch.float64"),
    (lambda: zoo.ops.linear(torch.randn(3, 5).half(), torch.randn(4, 5).half()), TypeError, "float32 or float64"),
    (lambda: zoo.ops.linear(torch.tensor(1.0), torch.randn(4, 1)), ValueError, "0-D input"),
    (lambda: zoo.ops.linear(torch.randn(3, 5), torch.randn(2, 4, 5)), ValueError, "3-D weight"),
    (lambda: zoo.ops.linear(torch.randn(3, 5), torch.randn(5), torch.randn(1)), ValueError,
     "a 1-D weight takes a bias only as a 0-D tensor"),
    (lambda: zoo.ops.linear(torch.randn(3, 5), "w"), TypeError, "weight must be a torch.Tensor"),
    (lambda: zoo.ops.linear(torch.randn(3, 5).to_sparse(), torch.randn(4, 5)), TypeError, "layout"),
    (lambda: torch.ops.zoo.linear_backward(torch.randn(3, 3), torch.randn(3, 5), torch.randn(4, 5), [True] * 3),
     ValueError, r"grad_y has shape \[3, 3\] but the output has shape \(3, 4\)"),
], ids=["features", "bias shape", "weight dtype", "bias dtype", "broadcast bias dtype", "half", "0-D", "3-D weight",
        "1-D weight bias", "not a tensor", "sparse", "grad_y shape"])
def test_bad_input_is_refused_with_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_gradcheck_and_gradgradcheck():
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(zoo.ops.linear, (x, weight, bias))
    assert gradcheck(lambda a, w: zoo.ops.linear(a, w), (x, weight))
    assert gradcheck(lambda a: zoo.ops.linear(a, weight.detach(), bias.detach()), (x,))
    assert gradgradcheck(zoo.ops.linear, (x, weight, bias))  # create_graph takes torch's differentiable products


@pytest.mark.parametrize("shape", [(4, 6, 5), (16, 40, 20), (2, 3, 0)], ids=str)
def test_opcheck(shape):
    n, c, o = shape
    x, weight, bias = torch.randn(n, c, requires_grad=True), torch.randn(o, c, requires_grad=True), torch.randn(o)
    for args in [(x, weight, bias), (x, weight, None), (x.detach(), weight.detach(), bias)]:
        torch.library.opcheck(torch.ops.zoo.linear.default, args)
    torch.library.opcheck(torch.ops.zoo.linear_backward.default,
                          (torch.randn(n, o), x.detach(), weight.detach(), [True, True, True]))
    torch.library.opcheck(torch.ops.zoo.linear_backward.default,
                          (torch.randn(n, o), x.detach(), weight.detach(), [False, True, False]))


def test_no_grad_call_builds_no_graph_and_matches():
    layer = zoo.nn.Linear(6, 4)
    x = torch.randn(3, 6)
    with torch.no_grad():
        y = layer(x)
    assert y.grad_fn is None
    torch.testing.assert_close(y, F.linear(x, layer.weight, layer.bias))


def test_layer_is_drop_in_for_torch_linear():
    ours, theirs = zoo.nn.Linear(20, 7, dtype=torch.float64), torch.nn.Linear(20, 7, bias=False, dtype=torch.float64)
    assert repr(ours) == repr(torch.nn.Linear(20, 7, dtype=torch.float64))
    assert isinstance(ours, torch.nn.Linear) and list(ours.state_dict()) == ["weight", "bias"]
    no_bias = zoo.nn.Linear(20, 7, bias=False, dtype=torch.float64)
    no_bias.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 20, dtype=torch.float64)
    torch.testing.assert_close(no_bias(x), theirs(x))


def test_layer_takes_what_the_functional_form_takes():
    """The layer's direct call of the op for 2-D input falls back to the functional form for everything else."""
    layer = zoo.nn.Linear(6, 4, dtype=torch.float64)
    x = torch.randn(3, 6, dtype=torch.float64)
    layer.bias = torch.nn.Parameter(torch.randn((), dtype=torch.float64))  # a 0-D bias, as torch takes it
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
    with pytest.raises(ValueError, match="x has 5 features"):
        layer(torch.randn(3, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="weight has dtype torch.float64 but x has dtype torch.float32"):
        layer(torch.randn(3, 6))


def test_models_use_it():
    model = zoo.create_model("emnist_dnn_2x100")
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(type(m) is zoo.nn.Linear for m in linears)


def test_compiles_and_exports():
    layer = zoo.nn.Linear(12, 5)
    x = torch.randn(16, 12)
    torch.testing.assert_close(torch.compile(layer, fullgraph=True)(x), layer(x))
    program = torch.export.export(layer, (x,))
    assert any(str(node.target) == "zoo.linear.default" for node in program.graph.nodes)
    torch.testing.assert_close(program.module()(x), layer(x))


def test_compiled_training_step_matches_eager():
    model = torch.nn.Sequential(zoo.nn.Linear(12, 16), torch.nn.ReLU(), zoo.nn.Linear(16, 3))
    x = torch.randn(20, 12)
    eager = model(x)
    eager_grads = torch.autograd.grad(eager.sum(), list(model.parameters()))
    compiled = torch.compile(model, fullgraph=True)(x)
    compiled_grads = torch.autograd.grad(compiled.sum(), list(model.parameters()))
    torch.testing.assert_close(compiled, eager)
    for a, b in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("bias", [True, False])
def test_onnx_export_is_gemm_and_matches(tmp_path, bias):
    model = torch.nn.Sequential(torch.nn.Flatten(), zoo.nn.Linear(12, 5, bias=bias)).eval()
    x = torch.randn(3, 3, 4)
    run, op_types = onnx_round_trip(model, x, tmp_path / "linear.onnx")
    for n in (1, 7):
        x = torch.randn(n, 3, 4)
        with torch.no_grad():
            np.testing.assert_allclose(run(x), model(x).numpy(), rtol=1e-5, atol=1e-6)
    assert "Gemm" in op_types
