// Max pooling on CUDA: one thread per output (forward) and one per input (backward), grid-stride loops.
#include "common.cuh"
#include "max_pool_kernels.cuh"

#include <cmath>

namespace zoo::cuda::kernels {
namespace {

using detail::ceil_div;

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const scalar_t* x, scalar_t* y, int64_t* indices, int64_t planes, Pool2dGeometry g) {
  const int64_t total = planes * g.Ho * g.Wo;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = i % g.Wo, oh = (i / g.Wo) % g.Ho, p = i / (g.Wo * g.Ho);
    const Pool2dGeometry::Range rows = g.rows(oh), cols = g.cols(ow);
    const scalar_t* plane = x + p * g.H * g.W;
    scalar_t best = -static_cast<scalar_t>(INFINITY);  // numeric_limits is host-only in device code
    int64_t arg = rows.first * g.W + cols.first;
    for (int64_t r = rows.first; r < rows.end; r += g.dh)
      for (int64_t c = cols.first; c < cols.end; c += g.dw) {
        const scalar_t v = plane[r * g.W + c];
        if (v > best || v != v) {
          best = v;
          arg = r * g.W + c;
        }
      }
    y[i] = best;
    if (indices != nullptr) indices[i] = arg;
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) backward_kernel(const scalar_t* grad_y, const int64_t* indices,
                                                            scalar_t* grad_x, int64_t planes, Pool2dGeometry g) {
  const int64_t total = planes * g.H * g.W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = i % g.W, h = (i / g.W) % g.H, p = i / (g.W * g.H);
    // The outputs whose windows reach this input: oh * sh - ph <= h <= oh * sh - ph + (kh - 1) dh.
    const int64_t h_reach = h + g.ph - (g.kh - 1) * g.dh, w_reach = w + g.pw - (g.kw - 1) * g.dw;
    const int64_t oh_first = h_reach <= 0 ? 0 : ceil_div(h_reach, g.sh);
    const int64_t ow_first = w_reach <= 0 ? 0 : ceil_div(w_reach, g.sw);
    const int64_t oh_end = min((h + g.ph) / g.sh + 1, g.Ho), ow_end = min((w + g.pw) / g.sw + 1, g.Wo);
    const int64_t own = h * g.W + w, plane_out = p * g.Ho * g.Wo;
    scalar_t sum = 0;
    for (int64_t oh = oh_first; oh < oh_end; ++oh)
      for (int64_t ow = ow_first; ow < ow_end; ++ow) {
        const int64_t o = plane_out + oh * g.Wo + ow;
        if (indices[o] == own) sum += grad_y[o];
      }
    grad_x[i] = sum;
  }
}

}  // namespace

template <typename scalar_t>
void max_pool2d_forward(const scalar_t* x, scalar_t* y, int64_t* indices, int64_t planes, const Pool2dGeometry& g,
                        cudaStream_t stream) {
  detail::launch_kernel(forward_kernel<scalar_t>, detail::grid_stride_blocks(planes * g.Ho * g.Wo, kThreads), dim3(kThreads), stream, x, y,
                        indices, planes, g);
}

template <typename scalar_t>
void max_pool2d_backward(const scalar_t* grad_y, const int64_t* indices, scalar_t* grad_x, int64_t planes,
                         const Pool2dGeometry& g, cudaStream_t stream) {
  detail::launch_kernel(backward_kernel<scalar_t>, detail::grid_stride_blocks(planes * g.H * g.W, kThreads), dim3(kThreads), stream, grad_y,
                        indices, grad_x, planes, g);
}

#define ZOO_INSTANTIATE_MAX_POOL(T)                                                                          \
  template void max_pool2d_forward<T>(const T*, T*, int64_t*, int64_t, const Pool2dGeometry&, cudaStream_t); \
  template void max_pool2d_backward<T>(const T*, const int64_t*, T*, int64_t, const Pool2dGeometry&, cudaStream_t);

ZOO_INSTANTIATE_MAX_POOL(float)
ZOO_INSTANTIATE_MAX_POOL(double)

#undef ZOO_INSTANTIATE_MAX_POOL

}  // namespace zoo::cuda::kernels
