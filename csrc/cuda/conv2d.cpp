// Host side of zoo's CUDA conv2d (groups = 1): shape/layout handling and batching
// around the raw kernels in conv2d_kernels.cu. Built only when torch has CUDA.
#include "ops.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <limits>

#include "checks.h"
#include "conv2d_kernels.cuh"

namespace zoo::cuda {
namespace {

namespace kern = zoo::cuda::kernels;

// Upper bound for the im2col buffer of one chunk of images; the batch is processed in
// chunks of as many images as fit (at least one).
constexpr int64_t kColBudgetBytes = int64_t{256} << 20;

kern::Conv2dShape make_shape(const at::Tensor& x, const at::Tensor& weight, const std::vector<int64_t>& stride,
                             const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation) {
  TORCH_CHECK_VALUE(x.is_cuda() && weight.is_cuda(), "zoo conv2d (CUDA kernel): x is on ", x.device(),
                    " and weight on ", weight.device());
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
                   "zoo conv2d: expected float32 or float64, got ", x.scalar_type());
  const checks::ConvOutputSize out = checks::check_conv2d(x, weight, stride, padding, dilation);
  kern::Conv2dShape s{};
  s.Cin = x.size(1);
  s.H = x.size(2);
  s.W = x.size(3);
  s.Cout = weight.size(0);
  s.kh = weight.size(2);
  s.kw = weight.size(3);
  s.sh = stride[0];
  s.sw = stride[1];
  s.ph = padding[0];
  s.pw = padding[1];
  s.dh = dilation[0];
  s.dw = dilation[1];
  s.Hout = out.Ho;
  s.Wout = out.Wo;
  // The im2col/col2im kernels do per-pixel index math in 32 bits (tensor offsets are 64-bit).
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  TORCH_CHECK_VALUE(s.H + 2 * s.ph < kIntMax && s.W + 2 * s.pw < kIntMax && s.Hout * s.sh < kIntMax &&
                        s.Wout * s.sw < kIntMax && s.dh * s.kh < kIntMax && s.dw * s.kw < kIntMax &&
                        s.kh * s.kw < kIntMax,
                    "zoo conv2d (CUDA kernel): spatial sizes too large for 32-bit pixel indexing, input ", x.sizes(),
                    " weight ", weight.sizes());
  return s;
}

// Images per chunk so that the im2col buffer stays within budget.
int64_t chunk_images(const kern::Conv2dShape& s, int64_t N, size_t elem_size) {
  if (s.pointwise()) return N;  // no im2col buffer
  const int64_t per_image = std::max<int64_t>(1, s.K() * s.L() * static_cast<int64_t>(elem_size));
  return std::clamp<int64_t>(kColBudgetBytes / per_image, 1, N);
}

// Workspace for every chunk size that will be used (full chunks and the remainder).
template <typename F>
int64_t workspace_elems(F elems_for, int64_t N, int64_t B) {
  size_t e = elems_for(B);
  if (N % B != 0) e = std::max(e, elems_for(N % B));
  return static_cast<int64_t>(e);
}

}  // namespace

at::Tensor conv2d_forward(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation) {
  const kern::Conv2dShape s = make_shape(x, weight, stride, padding, dilation);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const at::Tensor wc = weight.contiguous();
  at::Tensor bc;
  checks::check_conv2d_bias(bias, x, s.Cout);
  if (bias.has_value() && bias->defined()) bc = bias->contiguous();
  const int64_t N = x.size(0);
  at::Tensor y = at::empty({N, s.Cout, s.Hout, s.Wout}, x.options());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_forward_cuda", [&] {
    const int64_t B = chunk_images(s, N, sizeof(scalar_t));
    const int64_t ws_elems = workspace_elems(
        [&](int64_t b) { return kern::conv2d_forward_workspace_elems<scalar_t>(s, b); }, N, B);
    at::Tensor ws = at::empty({ws_elems}, x.options());
    scalar_t* wsp = ws_elems > 0 ? ws.data_ptr<scalar_t>() : nullptr;
    const scalar_t* xp = xc.data_ptr<scalar_t>();
    const scalar_t* bp = bc.defined() ? bc.data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.data_ptr<scalar_t>();
    const int64_t x_img = s.Cin * s.H * s.W, y_img = s.Cout * s.L();
    for (int64_t n0 = 0; n0 < N; n0 += B) {
      const int64_t b = std::min(B, N - n0);
      kern::conv2d_forward<scalar_t>(xp + n0 * x_img, wc.data_ptr<scalar_t>(), bp, yp + n0 * y_img, b, s, wsp,
                                     stream);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return y;  // contiguous NCHW, like the CPU kernel (a channels-last x is read through a copy)
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                               const at::Tensor& weight, std::vector<int64_t> stride,
                                                               std::vector<int64_t> padding,
                                                               std::vector<int64_t> dilation,
                                                               std::array<bool, 3> output_mask) {
  const kern::Conv2dShape s = make_shape(x, weight, stride, padding, dilation);
  const int64_t N = x.size(0);
  checks::check_conv2d_grad(grad_y, x, s.Cout, {s.Hout, s.Wout});
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor dy = grad_y.contiguous();
  const at::Tensor xc = x.contiguous();
  const at::Tensor wc = weight.contiguous();
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  at::Tensor dx = at::empty({0}, x.options());
  at::Tensor dw = at::empty({0}, x.options());
  at::Tensor db = at::empty({0}, x.options());

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_backward_cuda", [&] {
    const int64_t B = chunk_images(s, N, sizeof(scalar_t));
    int64_t ws_elems = 0;
    if (output_mask[0]) {
      ws_elems = std::max(ws_elems, workspace_elems([&](int64_t b) {
        return kern::conv2d_backward_input_workspace_elems<scalar_t>(s, b);
      }, N, B));
    }
    if (output_mask[1]) {
      ws_elems = std::max(ws_elems, workspace_elems([&](int64_t b) {
        return kern::conv2d_backward_weight_workspace_elems<scalar_t>(s, b);
      }, N, B));
    }
    // One scratch buffer serves both passes: they run one after the other on `stream`.
    at::Tensor ws = at::empty({ws_elems}, x.options());
    scalar_t* wsp = ws_elems > 0 ? ws.data_ptr<scalar_t>() : nullptr;
    const scalar_t* dyp = dy.data_ptr<scalar_t>();
    const scalar_t* xp = xc.data_ptr<scalar_t>();
    const scalar_t* wp = wc.data_ptr<scalar_t>();
    const int64_t x_img = s.Cin * s.H * s.W, y_img = s.Cout * s.L();

    if (output_mask[0]) {
      dx = at::empty(x.sizes(), x.options());  // contiguous NCHW, like the CPU kernel
      for (int64_t n0 = 0; n0 < N; n0 += B) {
        const int64_t b = std::min(B, N - n0);
        kern::conv2d_backward_input<scalar_t>(dyp + n0 * y_img, wp, dx.data_ptr<scalar_t>() + n0 * x_img, b, s, wsp,
                                              stream);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    }
    if (output_mask[1]) {
      dw = at::empty(weight.sizes(), weight.options().memory_format(at::MemoryFormat::Contiguous));
      for (int64_t n0 = 0; n0 < N; n0 += B) {
        const int64_t b = std::min(B, N - n0);
        kern::conv2d_backward_weight<scalar_t>(dyp + n0 * y_img, xp + n0 * x_img, dw.data_ptr<scalar_t>(), b, s,
                                               /*accumulate=*/n0 > 0, wsp, stream);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    }
    if (output_mask[2]) {
      db = at::empty({s.Cout}, x.options());
      const size_t bytes = kern::conv2d_backward_bias_workspace_bytes<scalar_t>(N, s.Cout, s.L());
      at::Tensor bws = at::empty({static_cast<int64_t>(bytes)}, x.options().dtype(at::kByte));
      kern::conv2d_backward_bias<scalar_t>(dyp, N, s.Cout, s.L(), db.data_ptr<scalar_t>(),
                                           bytes ? bws.data_ptr() : nullptr, stream);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });

  return {dx, dw, db};
}

}  // namespace zoo::cuda
