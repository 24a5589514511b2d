// zoo._C: the extension module Python imports. Loading it registers zoo's
// operators with torch's dispatcher (the schemas in csrc/ops.cpp, the kernels
// of each device and the autograd wrappers, all linked into this module);
// Python then calls them as torch.ops.zoo.*. The module itself only tells
// how it was built (CUDA kernels, OpenMP threads) and which algorithm the CPU
// convolution and linear layer pick for a layer.
#include "checks.h"
#include "cpu/direct_conv.h"
#include "cpu/linear.h"
#include "cpu/pointwise_conv.h"
#include "cpu/winograd.h"

#include <torch/csrc/utils/pybind.h>

#include <string>
#include <tuple>
#include <vector>

PYBIND11_MODULE(_C, m) {
  m.doc() = "zoo's batch-norm and convolution kernels, registered as torch.ops.zoo.* (CPU, and CUDA when built).";
#ifdef ZOO_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  // Whether the CPU kernels' at::parallel_for loops use torch's OpenMP threads.
#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
  m.def(
      "conv2d_cpu_algorithm",
      [](const at::Tensor& x, const at::Tensor& weight, const std::vector<int64_t>& stride,
         const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation) -> std::string {
        const zoo::Conv2dGeometry g = zoo::checks::check_conv2d_geometry(x, weight, stride, padding, dilation);
        if (zoo::cpu::winograd::applies(g, x.size(0))) return "winograd";
        if (zoo::cpu::direct::applies(g, x.scalar_type())) return "direct";
        if (zoo::cpu::pointwise::applies(g, x.scalar_type())) return "pointwise";
        return "im2col";
      },
      "The algorithm zoo's CPU conv2d forward uses for input x and weight (shapes and dtype only: meta "
      "tensors do): 'winograd' (F(2x2, 3x3) or F(2x2, 5x5), backward too), 'direct' (few input channels, "
      "float32; weight gradient too, input gradient up to 16 output channels, else im2col's), 'pointwise' "
      "(1x1, float32, one product per image, backward too; where our product kernel replaces MKL) or "
      "'im2col' (im2col + GEMM).",
      pybind11::arg("x"), pybind11::arg("weight"), pybind11::arg("stride"), pybind11::arg("padding"),
      pybind11::arg("dilation"));
  m.def(
      "linear_cpu_algorithm",
      [](const at::Tensor& x, const at::Tensor& weight) -> std::tuple<std::string, std::string, std::string> {
        zoo::checks::check_linear(x, weight, std::nullopt);
        const int64_t N = x.size(0), C = x.size(1), O = weight.size(0);
        const at::ScalarType t = x.scalar_type();
        namespace linear = zoo::cpu::linear;
        return {linear::name(linear::algorithm(t, N, C, O, true)), linear::name(linear::algorithm(t, N, O, C, false)),
                linear::name(linear::algorithm(t, O, N, C, false))};
      },
      "The kernels zoo's CPU linear layer uses for x (N, in) and weight (out, in) (shapes and dtype only: meta "
      "tensors do), for (output, input gradient, weight gradient): 'dot' (dot products, for fewer than 12 rows "
      "or 16 columns: batch-1 inference), 'blocks' (our register-blocked product) or 'blas' (torch's products: "
      "float64, CPUs where MKL runs its best code, small backward products).",
      pybind11::arg("x"), pybind11::arg("weight"));
}
