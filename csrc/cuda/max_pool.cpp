// Host side of zoo's CUDA max pooling: checks and layout around the raw kernels in
// max_pool_kernels.cu, registered for the CUDA key of the zoo max-pooling ops.
// Built only when torch has CUDA.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "checks.h"
#include "max_pool_kernels.cuh"

namespace zoo::cuda {
namespace {

namespace kern = zoo::cuda::kernels;

void check_cuda(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.is_cuda(), "zoo max_pool2d (CUDA kernel): x is on ", x.device());
}

std::tuple<at::Tensor, at::Tensor> pool(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                        at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                                        bool with_indices) {
  const Pool2dGeometry g = checks::check_max_pool2d_geometry(input, kernel_size, stride, padding, dilation, ceil_mode);
  check_cuda(input);
  const c10::cuda::CUDAGuard guard(input.device());
  const at::Tensor x = input.contiguous();
  const std::vector<int64_t> sizes = {x.size(0), x.size(1), g.Ho, g.Wo};
  at::Tensor y = at::empty(sizes, x.options());
  at::Tensor indices = with_indices ? at::empty(sizes, x.options().dtype(at::kLong)) : at::Tensor();
  if (y.numel() == 0) return {y, indices};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_max_pool2d_cuda", [&] {
    kern::max_pool2d_forward<scalar_t>(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(),
                                       with_indices ? indices.mutable_data_ptr<int64_t>() : nullptr,
                                       x.size(0) * x.size(1), g, c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {y, indices};
}

at::Tensor max_pool2d(const at::Tensor& x, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  return std::get<0>(pool(x, kernel_size, stride, padding, dilation, ceil_mode, false));
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices(const at::Tensor& x, at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride, at::IntArrayRef padding,
                                                           at::IntArrayRef dilation, bool ceil_mode) {
  return pool(x, kernel_size, stride, padding, dilation, ceil_mode, true);
}

at::Tensor max_pool2d_backward(const at::Tensor& grad_y_in, const at::Tensor& x, const at::Tensor& indices_in,
                               at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                               at::IntArrayRef dilation, bool ceil_mode) {
  const Pool2dGeometry g = checks::check_max_pool2d_backward(grad_y_in, x, indices_in, kernel_size, stride, padding,
                                                             dilation, ceil_mode);
  check_cuda(x);
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor dx = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  if (dx.numel() == 0) return dx;
  const at::Tensor grad_y = grad_y_in.contiguous(), indices = indices_in.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_max_pool2d_backward_cuda", [&] {
    kern::max_pool2d_backward<scalar_t>(grad_y.const_data_ptr<scalar_t>(), indices.const_data_ptr<int64_t>(),
                                        dx.mutable_data_ptr<scalar_t>(), x.size(0) * x.size(1), g,
                                        c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return dx;
}

}  // namespace
}  // namespace zoo::cuda

TORCH_LIBRARY_IMPL(zoo, CUDA, m) {
  m.impl("max_pool2d", &zoo::cuda::max_pool2d);
  m.impl("max_pool2d_with_indices", &zoo::cuda::max_pool2d_with_indices);
  m.impl("max_pool2d_backward", &zoo::cuda::max_pool2d_backward);
}
