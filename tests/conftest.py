"""Shared test helpers: tolerances per dtype and reference comparisons."""

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
