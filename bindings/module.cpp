// zoo._C: the extension module Python imports. Loading it registers zoo's
// operators with torch's dispatcher (the schemas in csrc/ops.cpp, the kernels
// of each device and the autograd wrappers, all linked into this module);
// Python then calls them as torch.ops.zoo.*. The module itself only tells
// how it was built.
#include <torch/csrc/utils/pybind.h>

PYBIND11_MODULE(_C, m) {
  m.doc() = "zoo's batch-norm and convolution kernels, registered as torch.ops.zoo.* (CPU, and CUDA when built).";
#ifdef ZOO_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
}
