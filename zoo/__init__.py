"""zoo: classic image classifiers on hand-written C++/CUDA batch-norm and convolution kernels."""

import torch  # noqa: F401  (the extension links against torch's libraries: load them first)

from zoo import _C, nn, ops

__version__ = "0.1.0"
__all__ = ["nn", "ops", "__version__"]
