// Host side of zoo's CUDA batch norm: layout handling around the raw kernels in
// batch_norm_kernels.cu, registered for the CUDA key of the zoo batch-norm ops.
// Built only when torch has CUDA.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "batch_norm_kernels.cuh"
#include "checks.h"
#include "empty_batch.h"
#include "running_stats.h"

namespace zoo::cuda {
namespace {

namespace kern = zoo::cuda::kernels;
using checks::data_or_null;

// x viewed as (N, C, S) with element (n, c, s) at (n * C + c) * S + s (see batch_norm_kernels.cuh).
// Outputs use the same layout, so they match at::empty_like(x) for the layouts zoo accepts.
struct BnView {
  at::Tensor x;             // contiguous in `format`
  at::MemoryFormat format;  // layout of x, used for every other (N, C, H, W) tensor
  int64_t N, C, S;
};

BnView make_view(const at::Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1);
  int64_t S = 1;
  for (int64_t d = 2; d < x.dim(); ++d) S *= x.size(d);
  if (x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    // NHWC: rows of C channels, handled by the channels-innermost kernels.
    return {x, at::MemoryFormat::ChannelsLast, N * S, C, 1};
  }
  // (N, C), (N, C, L), NCHW. S == 1 automatically selects the channels-innermost kernels.
  return {x.contiguous(), at::MemoryFormat::Contiguous, N, C, S};
}

void check_device(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.is_cuda(), "zoo batch_norm (CUDA kernel): x is on ", x.device());
}

at::Tensor new_like_view(const at::Tensor& x, const BnView& v) {
  return at::empty(x.sizes(), x.options().memory_format(v.format));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_train(
    const at::Tensor& x, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& running_mean, const std::optional<at::Tensor>& running_var, double momentum,
    double eps, c10::string_view activation, double alpha) {
  check_device(x);
  checks::check_bn_train(x, weight, bias, running_mean, running_var, eps);
  const activation::Activation fused = checks::bn_activation(activation, alpha);
  if (x.numel() == 0) return empty_batch::batch_norm_train(x);
  const c10::cuda::CUDAGuard guard(x.device());
  const BnView v = make_view(x);
  const at::Tensor w = checks::contiguous_if_given(weight);
  const at::Tensor b = checks::contiguous_if_given(bias);
  at::Tensor mean = at::empty({v.C}, x.options());
  at::Tensor invstd = at::empty({v.C}, x.options());
  at::Tensor var = at::empty({v.C}, x.options());
  at::Tensor y = new_like_view(x, v);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_train_cuda", [&] {
    const scalar_t* xp = v.x.const_data_ptr<scalar_t>();
    const size_t ws_bytes = kern::bn_stats_workspace_bytes<scalar_t>(v.N, v.C, v.S);
    at::Tensor ws = at::empty({static_cast<int64_t>(ws_bytes)}, x.options().dtype(at::kByte));
    kern::bn_stats<scalar_t>(xp, v.N, v.C, v.S, eps, mean.mutable_data_ptr<scalar_t>(),
                             invstd.mutable_data_ptr<scalar_t>(), var.mutable_data_ptr<scalar_t>(),
                             ws_bytes ? ws.mutable_data_ptr() : nullptr, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    kern::bn_normalize<scalar_t>(xp, mean.const_data_ptr<scalar_t>(), invstd.const_data_ptr<scalar_t>(),
                                 data_or_null<scalar_t>(w), data_or_null<scalar_t>(b),
                                 y.mutable_data_ptr<scalar_t>(), v.N, v.C, v.S, fused, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  update_running_stats(running_mean, running_var, mean, var, momentum);
  return {y, mean, invstd, var};
}

at::Tensor batch_norm_eval(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const at::Tensor& running_mean,
                           const at::Tensor& running_var, double eps, c10::string_view activation, double alpha) {
  check_device(x);
  checks::check_bn_eval(x, weight, bias, running_mean, running_var, eps);
  const activation::Activation fused = checks::bn_activation(activation, alpha);
  if (x.numel() == 0) return at::empty_like(x);
  const c10::cuda::CUDAGuard guard(x.device());
  const BnView v = make_view(x);
  const at::Tensor w = checks::contiguous_if_given(weight);
  const at::Tensor b = checks::contiguous_if_given(bias);
  const at::Tensor rm = running_mean.contiguous();
  const at::Tensor rv = running_var.contiguous();
  at::Tensor invstd = at::empty({v.C}, x.options());
  at::Tensor y = new_like_view(x, v);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_eval_cuda", [&] {
    kern::bn_invstd_from_var<scalar_t>(rv.const_data_ptr<scalar_t>(), eps, v.C, invstd.mutable_data_ptr<scalar_t>(),
                                       stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    kern::bn_normalize<scalar_t>(v.x.const_data_ptr<scalar_t>(), rm.const_data_ptr<scalar_t>(),
                                 invstd.const_data_ptr<scalar_t>(), data_or_null<scalar_t>(w),
                                 data_or_null<scalar_t>(b), y.mutable_data_ptr<scalar_t>(), v.N, v.C, v.S, fused,
                                 stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                                   const std::optional<at::Tensor>& weight,
                                                                   const at::Tensor& mean,
                                                                   const at::Tensor& invstd, bool train,
                                                                   const std::optional<at::Tensor>& bias,
                                                                   c10::string_view activation, double alpha) {
  check_device(x);
  checks::check_bn_backward(grad_y, x, weight, mean, invstd);
  const activation::Activation fused = checks::check_bn_backward_activation(x, bias, train, activation, alpha);
  if (x.numel() == 0) return empty_batch::batch_norm_backward(x);
  const c10::cuda::CUDAGuard guard(x.device());
  const BnView v = make_view(x);
  const at::Tensor dy = grad_y.contiguous(v.format);  // same (N, C, S) view as x
  const at::Tensor w = checks::contiguous_if_given(weight);
  const at::Tensor b = checks::contiguous_if_given(bias);
  const at::Tensor m = mean.contiguous();
  const at::Tensor s = invstd.contiguous();
  at::Tensor sum_dy = at::empty({v.C}, x.options());  // == dbias
  at::Tensor sum_dy_xmu = at::empty({v.C}, x.options());
  at::Tensor dweight = at::empty({v.C}, x.options());
  at::Tensor dx = new_like_view(x, v);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_backward_cuda", [&] {
    const scalar_t* xp = v.x.const_data_ptr<scalar_t>();
    const scalar_t* dyp = dy.const_data_ptr<scalar_t>();
    const size_t ws_bytes = kern::bn_backward_workspace_bytes<scalar_t>(v.N, v.C, v.S);
    at::Tensor ws = at::empty({static_cast<int64_t>(ws_bytes)}, x.options().dtype(at::kByte));
    const scalar_t* wp = data_or_null<scalar_t>(w);
    const scalar_t* bp = data_or_null<scalar_t>(b);
    kern::bn_backward_reduce<scalar_t>(dyp, xp, m.const_data_ptr<scalar_t>(), s.const_data_ptr<scalar_t>(), wp, bp,
                                       fused, v.N, v.C, v.S, sum_dy.mutable_data_ptr<scalar_t>(),
                                       sum_dy_xmu.mutable_data_ptr<scalar_t>(), dweight.mutable_data_ptr<scalar_t>(),
                                       ws_bytes ? ws.mutable_data_ptr() : nullptr, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    kern::bn_backward_input<scalar_t>(dyp, xp, m.const_data_ptr<scalar_t>(), s.const_data_ptr<scalar_t>(), wp, bp,
                                      fused, sum_dy.const_data_ptr<scalar_t>(),
                                      sum_dy_xmu.const_data_ptr<scalar_t>(), v.N, v.C, v.S, v.N * v.S, train,
                                      dx.mutable_data_ptr<scalar_t>(), stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {dx, dweight, sum_dy};
}

std::tuple<at::Tensor, at::Tensor> batch_norm_stats(const at::Tensor& x) {
  check_device(x);
  checks::check_bn_stats(x);
  if (x.numel() == 0) return empty_batch::batch_norm_stats(x);
  const c10::cuda::CUDAGuard guard(x.device());
  const BnView v = make_view(x);
  at::Tensor mean = at::empty({v.C}, x.options());
  at::Tensor m2 = at::empty({v.C}, x.options());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_stats_cuda", [&] {
    const size_t ws_bytes = kern::bn_stats_workspace_bytes<scalar_t>(v.N, v.C, v.S);
    at::Tensor ws = at::empty({static_cast<int64_t>(ws_bytes)}, x.options().dtype(at::kByte));
    kern::bn_stats_m2<scalar_t>(v.x.const_data_ptr<scalar_t>(), v.N, v.C, v.S, mean.mutable_data_ptr<scalar_t>(),
                                m2.mutable_data_ptr<scalar_t>(), ws_bytes ? ws.mutable_data_ptr() : nullptr, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {mean, m2};
}

std::tuple<at::Tensor, at::Tensor> batch_norm_backward_reduce(const at::Tensor& grad_y, const at::Tensor& x,
                                                              const at::Tensor& mean) {
  check_device(x);
  checks::check_bn_backward_reduce(grad_y, x, mean);
  if (x.numel() == 0) return empty_batch::batch_norm_stats(x);  // zero sums
  const c10::cuda::CUDAGuard guard(x.device());
  const BnView v = make_view(x);
  const at::Tensor dy = grad_y.contiguous(v.format);
  const at::Tensor m = mean.contiguous();
  at::Tensor sum_dy = at::empty({v.C}, x.options());
  at::Tensor sum_dy_xmu = at::empty({v.C}, x.options());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_backward_reduce_cuda", [&] {
    const size_t ws_bytes = kern::bn_backward_workspace_bytes<scalar_t>(v.N, v.C, v.S);
    at::Tensor ws = at::empty({static_cast<int64_t>(ws_bytes)}, x.options().dtype(at::kByte));
    kern::bn_backward_reduce<scalar_t>(dy.const_data_ptr<scalar_t>(), v.x.const_data_ptr<scalar_t>(),
                                       m.const_data_ptr<scalar_t>(), nullptr, nullptr, nullptr, {}, v.N, v.C, v.S,
                                       sum_dy.mutable_data_ptr<scalar_t>(), sum_dy_xmu.mutable_data_ptr<scalar_t>(),
                                       nullptr, ws_bytes ? ws.mutable_data_ptr() : nullptr, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {sum_dy, sum_dy_xmu};
}

at::Tensor batch_norm_backward_elemt(const at::Tensor& grad_y, const at::Tensor& x,
                                     const std::optional<at::Tensor>& weight, const at::Tensor& mean,
                                     const at::Tensor& invstd, const at::Tensor& sum_dy, const at::Tensor& sum_dy_xmu,
                                     int64_t count) {
  check_device(x);
  checks::check_bn_backward_elemt(grad_y, x, weight, mean, invstd, sum_dy, sum_dy_xmu, count);
  if (x.numel() == 0) return at::empty_like(x);
  const c10::cuda::CUDAGuard guard(x.device());
  const BnView v = make_view(x);
  const at::Tensor dy = grad_y.contiguous(v.format);
  const at::Tensor w = checks::contiguous_if_given(weight);
  const at::Tensor m = mean.contiguous(), s = invstd.contiguous();
  const at::Tensor sd = sum_dy.contiguous(), sdx = sum_dy_xmu.contiguous();
  at::Tensor dx = new_like_view(x, v);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_backward_elemt_cuda", [&] {
    kern::bn_backward_input<scalar_t>(dy.const_data_ptr<scalar_t>(), v.x.const_data_ptr<scalar_t>(),
                                      m.const_data_ptr<scalar_t>(), s.const_data_ptr<scalar_t>(),
                                      data_or_null<scalar_t>(w), nullptr, {}, sd.const_data_ptr<scalar_t>(),
                                      sdx.const_data_ptr<scalar_t>(), v.N, v.C, v.S, count, true,
                                      dx.mutable_data_ptr<scalar_t>(), stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return dx;
}

}  // namespace
}  // namespace zoo::cuda

TORCH_LIBRARY_IMPL(zoo, CUDA, m) {
  m.impl("batch_norm_train", &zoo::cuda::batch_norm_train);
  m.impl("batch_norm_eval", &zoo::cuda::batch_norm_eval);
  m.impl("batch_norm_backward", &zoo::cuda::batch_norm_backward);
  m.impl("batch_norm_stats", &zoo::cuda::batch_norm_stats);
  m.impl("batch_norm_backward_reduce", &zoo::cuda::batch_norm_backward_reduce);
  m.impl("batch_norm_backward_elemt", &zoo::cuda::batch_norm_backward_elemt);
}
