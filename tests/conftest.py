"""Shared test helpers: tolerances per dtype, reference comparisons, ONNX round trips."""

from collections.abc import Callable

import numpy as np
import pytest
import torch

import zoo  # noqa: F401  (loads the extension and registers the zoo ops)

# (rtol, atol) for comparing against torch's own kernels.
TOLERANCE = {torch.float64: (1e-10, 1e-10), torch.float32: (1e-4, 1e-4)}

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype = None, scale: float = 1.0) -> None:
    """assert_close with the dtype's tolerance; `scale` widens it for long reductions."""
    rtol, atol = TOLERANCE[dtype or expected.dtype]
    torch.testing.assert_close(actual, expected, rtol=rtol * scale, atol=atol * scale)


def values_and_grad(fn, x: torch.Tensor, grad_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fn(x) and the gradient of x for the output gradient grad_y (x itself left untouched)."""
    leaf = x.detach().clone().requires_grad_()
    y = fn(leaf)
    y.backward(grad_y)
    return y.detach(), leaf.grad


def onnx_round_trip(model: torch.nn.Module, x: torch.Tensor, path) -> tuple[Callable[[torch.Tensor], np.ndarray], list[str]]:
    """``model`` exported to ``path`` with zoo's ONNX translations (batch dimension dynamic, 1 to 64) and loaded in
    onnxruntime: (a function running it on an input, the graph's operator types)."""
    import onnx
    import onnxruntime

    from zoo.export.translation import TRANSLATION_TABLE

    batch = torch.export.Dim("batch", min=1, max=64)
    torch.onnx.export(model, (x,), path, dynamo=True, custom_translation_table=TRANSLATION_TABLE,
                      dynamic_shapes={"input": {0: batch}})
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return (lambda t: session.run(None, {name: t.numpy()})[0]), [node.op_type for node in onnx.load(path).graph.node]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """Run the test with torch on one thread, restoring the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
