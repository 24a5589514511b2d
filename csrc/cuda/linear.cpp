// CUDA linear layer (zoo::linear, zoo::linear_backward): torch's products (cuBLAS, linear_aten.h),
// which run near the GPU's peak; zoo's part on CUDA is the op itself (checks, autograd, export).
// Built only when torch has CUDA.
#include "checks.h"
#include "linear_aten.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <array>
#include <optional>
#include <tuple>

namespace zoo::cuda {
namespace {

void check_device(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.is_cuda(), "zoo linear (CUDA kernel): x is on ", x.device());
}

at::Tensor linear_forward(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  check_device(x);
  checks::check_linear(x, weight, bias);
  const c10::cuda::CUDAGuard guard(x.device());
  return linear_aten::forward(x, weight, bias);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                               const at::Tensor& weight,
                                                               std::array<bool, 3> output_mask) {
  check_device(x);
  checks::check_linear_backward(grad_y, x, weight);
  const c10::cuda::CUDAGuard guard(x.device());
  return linear_aten::backward(grad_y, x, weight, output_mask);
}

}  // namespace
}  // namespace zoo::cuda

TORCH_LIBRARY_IMPL(zoo, CUDA, m) {
  m.impl("linear", &zoo::cuda::linear_forward);
  m.impl("linear_backward", &zoo::cuda::linear_backward);
}
