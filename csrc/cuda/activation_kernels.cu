// Activations on CUDA: one thread per value, grid-stride loop, activation.h's formulas (CUDA's own
// exp and expm1 for ELU).
#include "activation_kernels.cuh"
#include "common.cuh"

namespace zoo::cuda::kernels {
namespace {

constexpr int kThreads = 256;

template <typename Act, typename scalar_t>
__global__ void __launch_bounds__(kThreads) activation_kernel(Act act, const scalar_t* x, scalar_t* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    y[i] = act(x[i]);
  }
}

template <typename Act, typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    activation_backward_kernel(Act act, const scalar_t* dy, const scalar_t* x, scalar_t* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    dx[i] = act.grad(dy[i], x[i]);
  }
}

}  // namespace

template <typename scalar_t>
void activation(const scalar_t* x, scalar_t* y, int64_t n, activation::Activation a, cudaStream_t stream) {
  activation::dispatch<scalar_t>(a, [&](auto act) {
    detail::launch_kernel(activation_kernel<decltype(act), scalar_t>, detail::grid_stride_blocks(n, kThreads),
                          dim3(kThreads), stream, act, x, y, n);
  });
}

template <typename scalar_t>
void activation_backward(const scalar_t* dy, const scalar_t* x, scalar_t* dx, int64_t n, activation::Activation a,
                         cudaStream_t stream) {
  activation::dispatch<scalar_t>(a, [&](auto act) {
    detail::launch_kernel(activation_backward_kernel<decltype(act), scalar_t>,
                          detail::grid_stride_blocks(n, kThreads), dim3(kThreads), stream, act, dy, x, dx, n);
  });
}

#define ZOO_INSTANTIATE_ACTIVATION(T)                                                                       \
  template void activation<T>(const T*, T*, int64_t, activation::Activation, cudaStream_t);                \
  template void activation_backward<T>(const T*, const T*, T*, int64_t, activation::Activation, cudaStream_t);

ZOO_INSTANTIATE_ACTIVATION(float)
ZOO_INSTANTIATE_ACTIVATION(double)

#undef ZOO_INSTANTIATE_ACTIVATION

}  // namespace zoo::cuda::kernels
