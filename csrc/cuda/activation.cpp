// Host side of zoo's CUDA activations: checks and layout around the raw kernels in activation_kernels.cu,
// registered for the CUDA key of zoo::activation and zoo::activation_backward. Built only when torch has CUDA.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "activation_kernels.cuh"
#include "checks.h"

namespace zoo::cuda {
namespace {

void check_device(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.is_cuda(), "zoo activation (CUDA kernel): x is on ", x.device());
}

at::Tensor activation_forward(const at::Tensor& x_in, c10::string_view name, double alpha) {
  check_device(x_in);
  const activation::Activation a = checks::check_activation(x_in, name, alpha);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = at::empty_like(x);
  if (x.numel() == 0) return y;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_activation_cuda", [&] {
    kernels::activation<scalar_t>(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), x.numel(), a,
                                  c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return y;
}

at::Tensor activation_backward(const at::Tensor& grad_y, const at::Tensor& x_in, c10::string_view name,
                               double alpha) {
  check_device(x_in);
  const activation::Activation a = checks::check_activation_backward(grad_y, x_in, name, alpha);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), dy = grad_y.contiguous();
  at::Tensor dx = at::empty_like(x);
  if (x.numel() == 0) return dx;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_activation_backward_cuda", [&] {
    kernels::activation_backward<scalar_t>(dy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                           dx.mutable_data_ptr<scalar_t>(), x.numel(), a,
                                           c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return dx;
}

}  // namespace
}  // namespace zoo::cuda

TORCH_LIBRARY_IMPL(zoo, CUDA, m) {
  m.impl("activation", &zoo::cuda::activation_forward);
  m.impl("activation_backward", &zoo::cuda::activation_backward);
}
