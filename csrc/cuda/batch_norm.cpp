// Host side of zoo's CUDA batch norm: layout/dtype handling around the raw kernels in
// batch_norm_kernels.cu. Built only when torch has CUDA.
#include "ops.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "batch_norm_kernels.cuh"
#include "checks.h"

namespace zoo::cuda {
namespace {

namespace kern = zoo::cuda::kernels;

// at:: scalar types -> the CUDA types the kernels are instantiated for (same bit layout).
template <typename T> struct CudaType { using type = T; };
template <> struct CudaType<at::Half> { using type = __half; };
template <> struct CudaType<at::BFloat16> { using type = __nv_bfloat16; };

at::ScalarType acc_dtype(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

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

// x is a CUDA tensor of a supported dtype, (N, C, ...) and not empty.
void check_input(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.is_cuda(), "zoo batch_norm (CUDA kernel): x is on ", x.device());
  const auto t = x.scalar_type();
  TORCH_CHECK_TYPE(t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16,
                   "zoo batch_norm: expected float32, float64, float16 or bfloat16, got ", t);
  checks::check_bn_input(x);
}

// Contiguous per-channel tensor (weight, bias, running or saved stats), checked against x.
at::Tensor channel_param(const at::Tensor& p, const at::Tensor& x, const char* what) {
  checks::check_bn_channel_vector(p, x, what);
  return p.contiguous();
}

at::Tensor optional_param(const std::optional<at::Tensor>& p, const at::Tensor& x, const char* what) {
  if (!p.has_value() || !p->defined()) return at::Tensor();
  return channel_param(*p, x, what);
}

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

at::Tensor new_like_view(const at::Tensor& x, const BnView& v) {
  return at::empty(x.sizes(), x.options().memory_format(v.format));
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_train(const at::Tensor& x,
                                                                            const std::optional<at::Tensor>& weight,
                                                                            const std::optional<at::Tensor>& bias,
                                                                            double eps) {
  check_input(x);
  checks::check_bn_train_count(x);
  checks::check_bn_eps(eps);
  const c10::cuda::CUDAGuard guard(x.device());
  const BnView v = make_view(x);
  const at::Tensor w = optional_param(weight, x, "weight");
  const at::Tensor b = optional_param(bias, x, "bias");
  const auto acc_opts = x.options().dtype(acc_dtype(x.scalar_type()));
  at::Tensor mean = at::empty({v.C}, acc_opts);
  at::Tensor invstd = at::empty({v.C}, acc_opts);
  at::Tensor var = at::empty({v.C}, acc_opts);
  at::Tensor y = new_like_view(x, v);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "zoo_batch_norm_train_cuda", [&] {
    using cuda_t = typename CudaType<scalar_t>::type;
    using acc_t = kern::bn_acc_t<cuda_t>;
    const auto* xp = reinterpret_cast<const cuda_t*>(v.x.data_ptr<scalar_t>());
    const auto* wp = reinterpret_cast<const cuda_t*>(ptr_or_null<scalar_t>(w));
    const auto* bp = reinterpret_cast<const cuda_t*>(ptr_or_null<scalar_t>(b));
    auto* yp = reinterpret_cast<cuda_t*>(y.data_ptr<scalar_t>());
    const size_t ws_bytes = kern::bn_stats_workspace_bytes<cuda_t>(v.N, v.C, v.S);
    at::Tensor ws = at::empty({static_cast<int64_t>(ws_bytes)}, x.options().dtype(at::kByte));
    kern::bn_stats<cuda_t>(xp, v.N, v.C, v.S, eps, mean.data_ptr<acc_t>(), invstd.data_ptr<acc_t>(),
                           var.data_ptr<acc_t>(), ws_bytes ? ws.data_ptr() : nullptr, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // Normalise with the accumulation-precision stats (not the ones rounded to x's dtype).
    kern::bn_normalize<cuda_t>(xp, mean.data_ptr<acc_t>(), invstd.data_ptr<acc_t>(), wp, bp, yp, v.N, v.C, v.S,
                               stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });

  const auto dt = x.scalar_type();  // .to() is a no-op for float/double
  return {y, mean.to(dt), invstd.to(dt), var.to(dt)};
}

at::Tensor batch_norm_eval(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const at::Tensor& running_mean,
                           const at::Tensor& running_var, double eps) {
  check_input(x);
  checks::check_bn_eps(eps);
  const c10::cuda::CUDAGuard guard(x.device());
  const BnView v = make_view(x);
  const at::Tensor w = optional_param(weight, x, "weight");
  const at::Tensor b = optional_param(bias, x, "bias");
  const at::Tensor rv = channel_param(running_var, x, "running_var");
  const auto acc = acc_dtype(x.scalar_type());
  const at::Tensor rm = channel_param(running_mean, x, "running_mean").to(acc).contiguous();
  at::Tensor invstd = at::empty({v.C}, x.options().dtype(acc));
  at::Tensor y = new_like_view(x, v);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "zoo_batch_norm_eval_cuda", [&] {
    using cuda_t = typename CudaType<scalar_t>::type;
    using acc_t = kern::bn_acc_t<cuda_t>;
    kern::bn_invstd_from_var<cuda_t>(reinterpret_cast<const cuda_t*>(rv.data_ptr<scalar_t>()), eps, v.C,
                                     invstd.data_ptr<acc_t>(), stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    kern::bn_normalize<cuda_t>(reinterpret_cast<const cuda_t*>(v.x.data_ptr<scalar_t>()), rm.data_ptr<acc_t>(),
                               invstd.data_ptr<acc_t>(), reinterpret_cast<const cuda_t*>(ptr_or_null<scalar_t>(w)),
                               reinterpret_cast<const cuda_t*>(ptr_or_null<scalar_t>(b)),
                               reinterpret_cast<cuda_t*>(y.data_ptr<scalar_t>()), v.N, v.C, v.S, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                                   const std::optional<at::Tensor>& weight,
                                                                   const at::Tensor& mean,
                                                                   const at::Tensor& invstd, bool train) {
  check_input(x);
  checks::check_bn_grad(grad_y, x);
  const c10::cuda::CUDAGuard guard(x.device());
  const BnView v = make_view(x);
  const at::Tensor dy = grad_y.contiguous(v.format);  // same (N, C, S) view as x
  const at::Tensor w = optional_param(weight, x, "weight");
  const auto acc = acc_dtype(x.scalar_type());
  const at::Tensor mean_acc = channel_param(mean, x, "mean").to(acc).contiguous();
  const at::Tensor invstd_acc = channel_param(invstd, x, "invstd").to(acc).contiguous();
  const auto acc_opts = x.options().dtype(acc);
  at::Tensor sum_dy = at::empty({v.C}, acc_opts);  // == dbias
  at::Tensor sum_dy_xmu = at::empty({v.C}, acc_opts);
  at::Tensor dweight = at::empty({v.C}, acc_opts);
  at::Tensor dx = new_like_view(x, v);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "zoo_batch_norm_backward_cuda", [&] {
    using cuda_t = typename CudaType<scalar_t>::type;
    using acc_t = kern::bn_acc_t<cuda_t>;
    const auto* xp = reinterpret_cast<const cuda_t*>(v.x.data_ptr<scalar_t>());
    const auto* dyp = reinterpret_cast<const cuda_t*>(dy.data_ptr<scalar_t>());
    const auto* wp = reinterpret_cast<const cuda_t*>(ptr_or_null<scalar_t>(w));
    const size_t ws_bytes = kern::bn_backward_workspace_bytes<cuda_t>(v.N, v.C, v.S);
    at::Tensor ws = at::empty({static_cast<int64_t>(ws_bytes)}, x.options().dtype(at::kByte));
    kern::bn_backward_reduce<cuda_t>(dyp, xp, mean_acc.data_ptr<acc_t>(), invstd_acc.data_ptr<acc_t>(), v.N, v.C,
                                     v.S, sum_dy.data_ptr<acc_t>(), sum_dy_xmu.data_ptr<acc_t>(),
                                     dweight.data_ptr<acc_t>(), ws_bytes ? ws.data_ptr() : nullptr, stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    kern::bn_backward_input<cuda_t>(dyp, xp, mean_acc.data_ptr<acc_t>(), invstd_acc.data_ptr<acc_t>(), wp,
                                    sum_dy.data_ptr<acc_t>(), sum_dy_xmu.data_ptr<acc_t>(), v.N, v.C, v.S, train,
                                    reinterpret_cast<cuda_t*>(dx.data_ptr<scalar_t>()), stream);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });

  const auto dt = x.scalar_type();
  return {dx, dweight.to(dt), sum_dy.to(dt)};
}

}  // namespace zoo::cuda
