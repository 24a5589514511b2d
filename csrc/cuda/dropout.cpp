// Host side of zoo's CUDA dropout: checks and layout around the raw kernel in dropout_kernels.cu,
// registered for the CUDA key of zoo::dropout. Built only when torch has CUDA.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "checks.h"
#include "dropout.h"
#include "dropout_kernels.cuh"

namespace zoo::cuda {
namespace {

at::Tensor dropout(const at::Tensor& x, double p, const at::Tensor& seed_in) {
  TORCH_CHECK_VALUE(x.is_cuda(), "zoo dropout (CUDA kernel): x is on ", x.device());
  checks::check_dropout(x, p, seed_in);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor input = x.contiguous(), seed = seed_in.contiguous();
  at::Tensor y = at::empty(input.sizes(), input.options());
  if (y.numel() == 0) return y;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_dropout_cuda", [&] {
    const zoo::dropout::KeepRule<scalar_t> rule = zoo::dropout::keep_rule<scalar_t>(p);
    kernels::dropout<scalar_t>(input.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), input.numel(),
                               seed.const_data_ptr<int64_t>(), rule.last, rule.factor,
                               c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return y;
}

}  // namespace
}  // namespace zoo::cuda

TORCH_LIBRARY_IMPL(zoo, CUDA, m) { m.impl("dropout", &zoo::cuda::dropout); }
