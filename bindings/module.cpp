// zoo._C: the pybind11 module that exposes the C++ (and, when built, CUDA)
// kernels on torch tensors. No logic lives here; the custom ops in zoo/ops
// call these functions. Uses the pybind11 bundled with torch so that
// TORCH_CHECK_VALUE / TORCH_CHECK_TYPE reach Python as ValueError / TypeError.
#include <torch/csrc/utils/pybind.h>

#include <pybind11/stl.h>

#include "cpu/batch_norm.h"
#include "cpu/conv2d.h"
#ifdef ZOO_WITH_CUDA
#include "cuda/ops.h"
#endif

namespace py = pybind11;

namespace {

// Registers one device's kernels under names prefixed with `prefix`.
#define ZOO_BIND_DEVICE(m, prefix, ns)                                                                    \
  m.def(prefix "batch_norm_train", &ns::batch_norm_train, py::arg("x"), py::arg("weight"), py::arg("bias"), \
        py::arg("eps"), "Training batch norm: returns (y, mean, invstd, var_unbiased).");                   \
  m.def(prefix "batch_norm_eval", &ns::batch_norm_eval, py::arg("x"), py::arg("weight"), py::arg("bias"),   \
        py::arg("running_mean"), py::arg("running_var"), py::arg("eps"),                                    \
        "Inference batch norm from running statistics.");                                                   \
  m.def(prefix "batch_norm_backward", &ns::batch_norm_backward, py::arg("grad_y"), py::arg("x"),            \
        py::arg("weight"), py::arg("mean"), py::arg("invstd"), py::arg("train"),                            \
        "Fused batch-norm backward: returns (dx, dweight, dbias).");                                        \
  m.def(prefix "conv2d_forward", &ns::conv2d_forward, py::arg("x"), py::arg("weight"), py::arg("bias"),     \
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), "2-D convolution (groups=1).");         \
  m.def(prefix "conv2d_backward", &ns::conv2d_backward, py::arg("grad_y"), py::arg("x"), py::arg("weight"), \
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("output_mask"),                 \
        "2-D convolution backward: returns (dx, dweight, dbias) for the outputs in output_mask.")

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "zoo's batch-norm and convolution kernels (CPU, and CUDA when built with it).";
  ZOO_BIND_DEVICE(m, "cpu_", zoo::cpu);
#ifdef ZOO_WITH_CUDA
  ZOO_BIND_DEVICE(m, "cuda_", zoo::cuda);
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
}
