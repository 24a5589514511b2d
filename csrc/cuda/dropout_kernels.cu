// Dropout on CUDA: one thread per Philox block (4 elements), grid-stride loop.
#include "common.cuh"
#include "dropout_kernels.cuh"
#include "philox.h"

namespace zoo::cuda::kernels {
namespace {

using detail::ceil_div;

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    dropout_kernel(const scalar_t* x, scalar_t* y, int64_t n, const int64_t* seed, uint32_t last, scalar_t scale) {
  const auto key = static_cast<uint64_t>(*seed);
  const int64_t blocks = ceil_div(n, 4);
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < blocks; j += int64_t(gridDim.x) * blockDim.x) {
    const philox::Block r = philox::stream_block(key, static_cast<uint64_t>(j));
    for (int w = 0; w < 4; ++w) {
      const int64_t i = 4 * j + w;
      // (x * 1 or x * 0) * scale, as the CPU kernel computes it.
      if (i < n) y[i] = x[i] * static_cast<scalar_t>(r.v[w] <= last) * scale;
    }
  }
}

}  // namespace

template <typename scalar_t>
void dropout(const scalar_t* x, scalar_t* y, int64_t n, const int64_t* seed, uint32_t last, scalar_t scale,
             cudaStream_t stream) {
  detail::launch_kernel(dropout_kernel<scalar_t>, detail::grid_stride_blocks(ceil_div(n, 4), kThreads), dim3(kThreads),
                        stream, x, y, n, seed, last, scale);
}

template void dropout<float>(const float*, float*, int64_t, const int64_t*, uint32_t, float, cudaStream_t);
template void dropout<double>(const double*, double*, int64_t, const int64_t*, uint32_t, double, cudaStream_t);

}  // namespace zoo::cuda::kernels
