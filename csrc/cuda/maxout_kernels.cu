// Maxout on CUDA: one thread per output value (g, s), grid-stride loop; a warp's threads read
// consecutive s of each piece, so every load and store is coalesced.
#include "common.cuh"
#include "maxout.h"
#include "maxout_kernels.cuh"

namespace zoo::cuda::kernels {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    maxout_kernel(const scalar_t* x, scalar_t* y, bool* mask, int64_t G, int64_t pieces, int64_t S) {
  const int64_t n = G * S;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t g = i / S, s = i - g * S;
    const scalar_t* xg = x + g * pieces * S + s;
    scalar_t m = xg[0];
    for (int64_t j = 1; j < pieces; ++j) m = maxout::nan_max(m, xg[j * S]);
    y[i] = m;
    if (mask != nullptr) {
      for (int64_t j = 0; j < pieces; ++j) mask[g * pieces * S + j * S + s] = xg[j * S] == m;
    }
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    maxout_backward_kernel(const scalar_t* dy, const bool* mask, scalar_t* dx, int64_t G, int64_t pieces, int64_t S) {
  const int64_t n = G * S;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t g = i / S, s = i - g * S;
    const bool* mg = mask + g * pieces * S + s;
    scalar_t count = 0;
    for (int64_t j = 0; j < pieces; ++j) count += static_cast<scalar_t>(mg[j * S]);
    const scalar_t share = dy[i] / count;  // count 0 (a NaN maximum): NaN, as in torch
    for (int64_t j = 0; j < pieces; ++j) dx[g * pieces * S + j * S + s] = share * static_cast<scalar_t>(mg[j * S]);
  }
}

}  // namespace

template <typename scalar_t>
void maxout(const scalar_t* x, scalar_t* y, bool* mask, int64_t G, int64_t pieces, int64_t S, cudaStream_t stream) {
  detail::launch_kernel(maxout_kernel<scalar_t>, detail::grid_stride_blocks(G * S, kThreads), dim3(kThreads), stream,
                        x, y, mask, G, pieces, S);
}

template <typename scalar_t>
void maxout_backward(const scalar_t* dy, const bool* mask, scalar_t* dx, int64_t G, int64_t pieces, int64_t S,
                     cudaStream_t stream) {
  detail::launch_kernel(maxout_backward_kernel<scalar_t>, detail::grid_stride_blocks(G * S, kThreads),
                        dim3(kThreads), stream, dy, mask, dx, G, pieces, S);
}

#define ZOO_INSTANTIATE_MAXOUT(T)                                                                          \
  template void maxout<T>(const T*, T*, bool*, int64_t, int64_t, int64_t, cudaStream_t);                  \
  template void maxout_backward<T>(const T*, const bool*, T*, int64_t, int64_t, int64_t, cudaStream_t);

ZOO_INSTANTIATE_MAXOUT(float)
ZOO_INSTANTIATE_MAXOUT(double)

#undef ZOO_INSTANTIATE_MAXOUT

}  // namespace zoo::cuda::kernels
