"""zoo: classic image classifiers on hand-written C++/CUDA batch-norm and convolution kernels."""

__version__ = "0.1.0"
__all__ = [
    "create_model",
    "list_models",
    "model_config",
    "models",
    "nn",
    "ops",
    "register_model",
    "train",
    "__version__",
]

try:
    import torch  # noqa: F401  (the extension links against torch's libraries: load them first)
except ImportError as _error:
    # Without torch only the torch-free parts load (zoo.export.predict runs ONNX models
    # with onnxruntime alone); anything else says what is missing when first used.
    _TORCH_ERROR: ImportError | None = _error
else:
    _TORCH_ERROR = None
    from zoo import _C, nn, ops
    from zoo import models, train
    from zoo.models import create_model, list_models, model_config, register_model


def __getattr__(name: str):
    """Reached only when torch failed to import: the torch-side names fail with the reason."""
    if _TORCH_ERROR is not None and name in __all__:
        raise ImportError(f"zoo.{name} needs torch, which failed to import: {_TORCH_ERROR}") from _TORCH_ERROR
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
