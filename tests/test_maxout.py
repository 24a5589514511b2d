"""zoo maxout (zoo.ops.maxout, zoo.nn.Maxout) against torch's unflatten + amax: values, gradients, ties, NaN."""

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import zoo
import zoo.models.layers
from conftest import onnx_round_trip, values_and_grad


def reference(x, pieces):
    """Maxout with torch's ops, as zoo's Maxout layer computed it before its kernel."""
    return x.unflatten(1, (-1, pieces)).amax(dim=2)


SHAPES = [((4, 6), 2), ((128, 2048), 2), ((5, 9), 3), ((3, 8, 7), 4), ((2, 6, 5, 7), 2), ((4, 384, 8, 8), 2),
          ((2, 12, 3, 3), 3), ((3, 4, 2, 2, 2), 2), ((1, 2), 2), ((6, 5), 1)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape,pieces", SHAPES, ids=str)
def test_values_and_gradients_equal_torch_amax(shape, pieces, dtype):
    x = torch.randn(shape, dtype=dtype)
    grad_y = torch.randn(reference(x, pieces).shape, dtype=dtype)
    ours = values_and_grad(lambda a: zoo.ops.maxout(a, pieces), x, grad_y)
    ref = values_and_grad(lambda a: reference(a, pieces), x, grad_y)
    for o, r in zip(ours, ref):
        assert torch.equal(o, r)  # the same maximum, and grad / count * mask computed as torch computes it


@pytest.mark.parametrize("pieces", [2, 3])
@pytest.mark.parametrize("shape", [(4, 6), (2, 6, 3, 3)], ids=str)
def test_ties_share_the_gradient_and_nan_wins_as_in_torch(shape, pieces):
    x = torch.randint(-1, 2, shape).double()  # many tied pieces
    x.view(-1)[3] = float("nan")
    x.view(-1)[-1] = float("-inf")
    grad_y = torch.randn(reference(x, pieces).shape, dtype=torch.float64)
    ours = values_and_grad(lambda a: zoo.ops.maxout(a, pieces), x, grad_y)
    ref = values_and_grad(lambda a: reference(a, pieces), x, grad_y)
    for o, r in zip(ours, ref):
        torch.testing.assert_close(o, r, rtol=0, atol=0, equal_nan=True)


def test_non_contiguous_and_channels_last_inputs():
    base = torch.randn(3, 8, 5, 6, dtype=torch.float64)
    for x in (base.transpose(2, 3), base.contiguous(memory_format=torch.channels_last), base[:, :, ::2]):
        grad_y = torch.randn(reference(x, 2).shape, dtype=torch.float64)
        ours = values_and_grad(lambda a: zoo.ops.maxout(a, 2), x, grad_y)
        ref = values_and_grad(lambda a: reference(a, 2), x, grad_y)
        for o, r in zip(ours, ref):
            assert torch.equal(o, r)


@pytest.mark.parametrize("shape", [(0, 6, 4, 4), (0, 0), (2, 0, 3, 3), (0, 0, 5, 5)], ids=str)
def test_empty_inputs(shape):
    # (0, 0) once made the output-block cache ask for 2^64 bytes (a negative span of an all-empty shape).
    x = torch.randn(shape, requires_grad=True)
    y = zoo.ops.maxout(x, 3 if shape[1] else 1)
    assert y.shape == reference(x, 3 if shape[1] else 1).shape
    y.sum().backward()
    assert x.grad.shape == x.shape


def test_no_grad_call_keeps_no_mask_and_matches():
    x = torch.randn(2, 6, 3, 3)
    with torch.no_grad():
        y = zoo.ops.maxout(x, 2)
    assert y.grad_fn is None
    assert torch.equal(y, reference(x, 2))


def test_gradcheck():
    x = torch.randn(3, 6, 2, 3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda a: zoo.ops.maxout(a, 3), (x,))
    rows = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda a: zoo.ops.maxout(a, 2), (rows,))


@pytest.mark.parametrize("op_name", ["maxout", "maxout_with_mask", "maxout_backward"])
def test_opcheck(op_name):
    x = torch.randn(2, 6, 3, 3, requires_grad=True)
    samples = {
        "maxout": [(x, 2), (torch.randn(5, 8, requires_grad=True), 4)],
        "maxout_with_mask": [(x, 3)],
        # a mask as the forward gives it (a group with no marked piece would give NaN, which opcheck's compare rejects)
        "maxout_backward": [(torch.randn(2, 3, 3, 3), torch.ops.zoo.maxout_with_mask(torch.randn(2, 6, 3, 3), 2)[1], 2)],
    }[op_name]
    for args in samples:
        torch.library.opcheck(getattr(torch.ops.zoo, op_name).default, args)


@pytest.mark.parametrize("call,error,match", [
    (lambda: zoo.ops.maxout(torch.randn(2, 5), 2), ValueError, r"dimension 1 of x \(5\) must be a multiple of pieces"),
    (lambda: zoo.ops.maxout(torch.randn(6), 2), ValueError, "2 or more dimensions"),
    (lambda: zoo.ops.maxout(torch.randn(2, 4), 0), ValueError, "pieces must be at least 1"),
    (lambda: zoo.ops.maxout(torch.randn(2, 4).half(), 2), TypeError, "float32 or float64"),
    (lambda: torch.ops.zoo.maxout_backward(torch.randn(2, 2), torch.ones(2, 4), 2), TypeError, "mask must be torch.bool"),
    (lambda: torch.ops.zoo.maxout_backward(torch.randn(2, 3), torch.ones(2, 4, dtype=torch.bool), 2), ValueError,
     "does not fit grad_y"),
], ids=["indivisible", "rank", "pieces", "dtype", "mask dtype", "mask shape"])
def test_bad_input_is_refused_with_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_layer_compiles_exports_and_is_the_models_maxout():
    assert zoo.models.layers.Maxout is zoo.nn.Maxout
    with pytest.raises(ValueError, match="at least 2 pieces"):
        zoo.nn.Maxout(1)
    layer = zoo.nn.Maxout(2)
    x = torch.randn(4, 6, 5, 5)
    torch.testing.assert_close(torch.compile(layer, fullgraph=True)(x), reference(x, 2))
    program = torch.export.export(layer, (x,))
    assert any(str(node.target) == "zoo.maxout.default" for node in program.graph.nodes)
    torch.testing.assert_close(program.module()(x), reference(x, 2))


def test_compiled_training_step_matches_eager():
    layer = torch.nn.Sequential(zoo.nn.Conv2d(2, 8, 3), zoo.nn.Maxout(2))
    x = torch.randn(3, 2, 6, 6)
    eager = layer(x)
    (eager_dw,) = torch.autograd.grad(eager.sum(), layer[0].weight)
    compiled = torch.compile(layer, fullgraph=True)(x)
    (compiled_dw,) = torch.autograd.grad(compiled.sum(), layer[0].weight)
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(compiled_dw, eager_dw)


@pytest.mark.parametrize("shape", [(3, 8), (2, 6, 5, 4)], ids=str)
def test_onnx_export_is_reshape_and_reducemax_and_matches(tmp_path, shape):
    model = torch.nn.Sequential(zoo.nn.Maxout(2)).eval()
    x = torch.randn(shape)
    run, op_types = onnx_round_trip(model, x, tmp_path / "maxout.onnx")
    for n in (1, 5):
        x = torch.randn(n, *shape[1:])
        np.testing.assert_array_equal(run(x), reference(x, 2).numpy())
    assert "ReduceMax" in op_types
