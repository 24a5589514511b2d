// Host side of zoo's CUDA maxout: checks and layout around the raw kernels in maxout_kernels.cu,
// registered for the CUDA key of the zoo maxout ops. Built only when torch has CUDA.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "checks.h"
#include "maxout.h"
#include "maxout_kernels.cuh"

namespace zoo::cuda {
namespace {

void check_device(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.is_cuda(), "zoo maxout (CUDA kernel): x is on ", x.device());
}

std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& x_in, int64_t pieces, bool with_mask) {
  check_device(x_in);
  checks::check_maxout(x_in, pieces);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const maxout::Groups q = maxout::groups_of(x.sizes().data(), x.dim(), pieces);
  at::Tensor y = at::empty(maxout::output_shape(x.sizes().data(), x.dim(), pieces), x.options());
  at::Tensor mask = with_mask ? at::empty(x.sizes(), x.options().dtype(at::kBool)) : at::Tensor();
  if (x.numel() == 0) return {y, mask};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_maxout_cuda", [&] {
    kernels::maxout<scalar_t>(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(),
                              with_mask ? mask.mutable_data_ptr<bool>() : nullptr, q.G, q.pieces, q.S,
                              c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {y, mask};
}

at::Tensor maxout(const at::Tensor& x, int64_t pieces) { return std::get<0>(forward(x, pieces, false)); }

std::tuple<at::Tensor, at::Tensor> maxout_with_mask(const at::Tensor& x, int64_t pieces) {
  return forward(x, pieces, true);
}

at::Tensor maxout_backward(const at::Tensor& grad_y, const at::Tensor& mask_in, int64_t pieces) {
  check_device(grad_y);
  checks::check_maxout_backward(grad_y, mask_in, pieces);
  const c10::cuda::CUDAGuard guard(grad_y.device());
  const at::Tensor dy = grad_y.contiguous(), mask = mask_in.contiguous();
  at::Tensor dx = at::empty(mask.sizes(), dy.options());
  if (dx.numel() == 0) return dx;
  const maxout::Groups q = maxout::groups_of(mask.sizes().data(), mask.dim(), pieces);
  AT_DISPATCH_FLOATING_TYPES(dy.scalar_type(), "zoo_maxout_backward_cuda", [&] {
    kernels::maxout_backward<scalar_t>(dy.const_data_ptr<scalar_t>(), mask.const_data_ptr<bool>(),
                                       dx.mutable_data_ptr<scalar_t>(), q.G, q.pieces, q.S,
                                       c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return dx;
}

}  // namespace
}  // namespace zoo::cuda

TORCH_LIBRARY_IMPL(zoo, CUDA, m) {
  m.impl("maxout", &zoo::cuda::maxout);
  m.impl("maxout_with_mask", &zoo::cuda::maxout_with_mask);
  m.impl("maxout_backward", &zoo::cuda::maxout_backward);
}
