// Host side of zoo's CUDA conv2d (groups = 1): shape/layout handling and batching
// around the raw kernels in conv2d_kernels.cu. Built only when torch has CUDA.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <tuple>

#include "checks.h"
#include "empty_batch.h"
#include "conv2d_kernels.cuh"

namespace zoo::cuda {
namespace {

namespace kern = zoo::cuda::kernels;

// Upper bound for the im2col buffer of one chunk of images; the batch is processed in
// chunks of as many images as fit (at least one).
constexpr int64_t kColBudgetBytes = int64_t{256} << 20;

// The CUDA-only limits on top of the shared checks.
void check_cuda(const at::Tensor& x, const at::Tensor& weight, const Conv2dGeometry& g) {
  TORCH_CHECK_VALUE(x.is_cuda() && weight.is_cuda(), "zoo conv2d (CUDA kernel): x is on ", x.device(),
                    " and weight on ", weight.device());
  // The im2col/col2im kernels do per-pixel index math in 32 bits (tensor offsets are 64-bit).
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  // Written as divisions: the products themselves may pass int64 for huge strides or dilations.
  const auto fits = [](int64_t a, int64_t b) { return a < kIntMax / b; };  // a * b < 2^31, a, b >= 1
  TORCH_CHECK_VALUE(g.ph < kIntMax / 2 && g.pw < kIntMax / 2 && g.H + 2 * g.ph < kIntMax &&
                        g.W + 2 * g.pw < kIntMax && fits(g.Ho, g.sh) && fits(g.Wo, g.sw) && fits(g.kh, g.dh) &&
                        fits(g.kw, g.dw) && fits(g.kh, g.kw),
                    "zoo conv2d (CUDA kernel): spatial sizes too large for 32-bit pixel indexing, input ", x.sizes(),
                    " weight ", weight.sizes());
}

// Images per chunk so that the im2col buffer stays within budget.
int64_t chunk_images(const Conv2dGeometry& g, int64_t N, size_t elem_size) {
  if (g.pointwise()) return N;  // no im2col buffer
  const int64_t per_image = std::max<int64_t>(1, g.K() * g.P() * static_cast<int64_t>(elem_size));
  return std::clamp<int64_t>(kColBudgetBytes / per_image, 1, N);
}

// Workspace for every chunk size that will be used (full chunks and the remainder).
template <typename F>
int64_t workspace_elems(F elems_for, int64_t N, int64_t B) {
  size_t e = elems_for(B);
  if (N % B != 0) e = std::max(e, elems_for(N % B));
  return static_cast<int64_t>(e);
}

at::Tensor conv2d_forward(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  const Conv2dGeometry g = checks::check_conv2d(x, weight, bias, stride, padding, dilation);
  check_cuda(x, weight, g);
  if (x.size(0) == 0) return empty_batch::conv2d(x, g);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const at::Tensor wc = weight.contiguous();
  const at::Tensor bc = checks::contiguous_if_given(bias);
  const int64_t N = x.size(0);
  at::Tensor y = at::empty({N, g.Cout, g.Ho, g.Wo}, x.options());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_forward_cuda", [&] {
    const int64_t B = chunk_images(g, N, sizeof(scalar_t));
    const int64_t ws_elems = workspace_elems(
        [&](int64_t b) { return kern::conv2d_forward_workspace_elems<scalar_t>(g, b); }, N, B);
    at::Tensor ws = at::empty({ws_elems}, x.options());
    scalar_t* wsp = ws_elems > 0 ? ws.data_ptr<scalar_t>() : nullptr;
    const scalar_t* xp = xc.data_ptr<scalar_t>();
    const scalar_t* bp = bc.defined() ? bc.data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.data_ptr<scalar_t>();
    const int64_t x_img = g.C * g.H * g.W, y_img = g.Cout * g.P();
    for (int64_t n0 = 0; n0 < N; n0 += B) {
      const int64_t b = std::min(B, N - n0);
      kern::conv2d_forward<scalar_t>(xp + n0 * x_img, wc.data_ptr<scalar_t>(), bp, yp + n0 * y_img, b, g, wsp,
                                     stream);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return y;  // contiguous NCHW, like the CPU kernel (a channels-last x is read through a copy)
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                               const at::Tensor& weight, at::IntArrayRef stride,
                                                               at::IntArrayRef padding, at::IntArrayRef dilation,
                                                               std::array<bool, 3> output_mask) {
  const Conv2dGeometry g = checks::check_conv2d_backward(grad_y, x, weight, stride, padding, dilation);
  check_cuda(x, weight, g);
  if (x.size(0) == 0) return empty_batch::conv2d_backward(x, weight, output_mask);
  const int64_t N = x.size(0);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor dy = grad_y.contiguous();
  const at::Tensor xc = x.contiguous();
  const at::Tensor wc = weight.contiguous();
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  at::Tensor dx = at::empty({0}, x.options());
  at::Tensor dw = at::empty({0}, x.options());
  at::Tensor db = at::empty({0}, x.options());

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_backward_cuda", [&] {
    const int64_t B = chunk_images(g, N, sizeof(scalar_t));
    int64_t ws_elems = 0;
    if (output_mask[0]) {
      ws_elems = std::max(ws_elems, workspace_elems([&](int64_t b) {
        return kern::conv2d_backward_input_workspace_elems<scalar_t>(g, b);
      }, N, B));
    }
    if (output_mask[1]) {
      ws_elems = std::max(ws_elems, workspace_elems([&](int64_t b) {
        return kern::conv2d_backward_weight_workspace_elems<scalar_t>(g, b);
      }, N, B));
    }
    // One scratch buffer serves both passes: they run one after the other on `stream`.
    at::Tensor ws = at::empty({ws_elems}, x.options());
    scalar_t* wsp = ws_elems > 0 ? ws.data_ptr<scalar_t>() : nullptr;
    const scalar_t* dyp = dy.data_ptr<scalar_t>();
    const scalar_t* xp = xc.data_ptr<scalar_t>();
    const scalar_t* wp = wc.data_ptr<scalar_t>();
    const int64_t x_img = g.C * g.H * g.W, y_img = g.Cout * g.P();

    if (output_mask[0]) {
      dx = at::empty(x.sizes(), x.options());  // contiguous NCHW, like the CPU kernel
      for (int64_t n0 = 0; n0 < N; n0 += B) {
        const int64_t b = std::min(B, N - n0);
        kern::conv2d_backward_input<scalar_t>(dyp + n0 * y_img, wp, dx.data_ptr<scalar_t>() + n0 * x_img, b, g, wsp,
                                              stream);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    }
    if (output_mask[1]) {
      dw = at::empty(weight.sizes(), weight.options().memory_format(at::MemoryFormat::Contiguous));
      for (int64_t n0 = 0; n0 < N; n0 += B) {
        const int64_t b = std::min(B, N - n0);
        kern::conv2d_backward_weight<scalar_t>(dyp + n0 * y_img, xp + n0 * x_img, dw.data_ptr<scalar_t>(), b, g,
                                               /*accumulate=*/n0 > 0, wsp, stream);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    }
    if (output_mask[2]) {
      db = at::empty({g.Cout}, x.options());
      const size_t bytes = kern::conv2d_backward_bias_workspace_bytes<scalar_t>(N, g.Cout, g.P());
      at::Tensor bws = at::empty({static_cast<int64_t>(bytes)}, x.options().dtype(at::kByte));
      kern::conv2d_backward_bias<scalar_t>(dyp, N, g.Cout, g.P(), db.data_ptr<scalar_t>(),
                                           bytes ? bws.data_ptr() : nullptr, stream);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });

  return {dx, dw, db};
}

}  // namespace
}  // namespace zoo::cuda

TORCH_LIBRARY_IMPL(zoo, CUDA, m) {
  m.impl("conv2d", &zoo::cuda::conv2d_forward);
  m.impl("conv2d_backward", &zoo::cuda::conv2d_backward);
}
