"""zoo: classic image classifiers on hand-written C++/CUDA batch-norm and convolution kernels."""

from zoo.lazy import lazy_names

__version__ = "0.1.0"

# Loaded on first use (zoo.lazy), so the torch-free parts (zoo.export.predict, zoo.data's
# array loaders) import without torch, and these names say what is missing when it is.
_LAZY = {
    "create_model": "zoo.models",
    "data": "zoo.data",
    "list_models": "zoo.models",
    "list_pretrained": "zoo.pretrained",
    "model_config": "zoo.models",
    "models": "zoo.models",
    "nn": "zoo.nn",
    "ops": "zoo.ops",
    "pretrained": "zoo.pretrained",
    "register_model": "zoo.models",
    "train": "zoo.train",
}
__all__ = [*_LAZY, "__version__"]
__getattr__, __dir__ = lazy_names(__name__, _LAZY)

try:
    import torch  # noqa: F401  (the extension links against torch's libraries: load them first)
except ImportError:
    pass  # without torch only the torch-free parts load
else:
    from zoo import _C, ops  # noqa: F401  (loads the extension and registers the zoo ops)
