"""zoo: classic image classifiers on hand-written C++/CUDA batch-norm and convolution kernels."""

import torch  # noqa: F401  (the extension links against torch's libraries: load them first)

from zoo import _C, nn, ops
from zoo import models, train
from zoo.models import create_model, list_models, model_config, register_model

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
