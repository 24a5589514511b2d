// Batch-norm CUDA kernels. See batch_norm_kernels.cuh for the contract.
//
// Design
//  * Statistics: every thread runs Welford over a strided slice of one channel,
//    warps merge partial (count, mean, M2) states with shuffles and Chan's formula,
//    warps merge through shared memory. Channels with many elements are split over
//    several blocks (grid.y) so that e.g. C = 192 still fills all SMs; the split
//    partials are merged by a second, one-warp-per-channel kernel (no atomics, so
//    results are deterministic). See common.cuh for the kernels and launch plans.
//  * Normalisation / dx: element-wise kernels that load per-channel constants once
//    per row (planar) or per column (channels-innermost), never per element.
#include "batch_norm_kernels.cuh"

#include "common.cuh"

namespace zoo::cuda::kernels {
namespace {

using namespace zoo::cuda::detail;

template <typename scalar_t>
struct StatsOp {
  using acc_t = scalar_t;
  using State = WelfordState<acc_t>;
  struct Ctx {};

  const scalar_t* x;
  acc_t* mean;
  acc_t* invstd;
  acc_t* var_unbiased;
  acc_t eps;

  __device__ __forceinline__ Ctx channel(int64_t) const { return {}; }
  __device__ __forceinline__ void update(State& st, const Ctx&, int64_t i) const { st.push(to_acc(x[i])); }
  __device__ __forceinline__ void finalize(int64_t c, const State& st) const {
    const acc_t n = static_cast<acc_t>(st.n);
    mean[c] = st.mean;
    invstd[c] = acc_t(1) / sqrt(st.m2 / n + eps);
    var_unbiased[c] = st.m2 / (n - acc_t(1));  // count >= 2: the ops refuse fewer (checks.h)
  }
};

// Statistics for synchronized batch norm: (mean, M2), merged across processes by the caller.
template <typename scalar_t>
struct StatsM2Op {
  using acc_t = scalar_t;
  using State = WelfordState<acc_t>;
  struct Ctx {};

  const scalar_t* x;
  acc_t* mean;
  acc_t* m2;

  __device__ __forceinline__ Ctx channel(int64_t) const { return {}; }
  __device__ __forceinline__ void update(State& st, const Ctx&, int64_t i) const { st.push(to_acc(x[i])); }
  __device__ __forceinline__ void finalize(int64_t c, const State& st) const {
    mean[c] = st.mean;
    m2[c] = st.m2;
  }
};

template <typename scalar_t>
struct BackwardReduceOp {
  using acc_t = scalar_t;
  using State = SumPairState<acc_t>;
  struct Ctx {
    acc_t mean;
  };

  const scalar_t* dy;
  const scalar_t* x;
  const acc_t* mean;
  const acc_t* invstd;
  acc_t* sum_dy;
  acc_t* sum_dy_xmu;
  acc_t* dweight;  // may be null

  __device__ __forceinline__ Ctx channel(int64_t c) const { return {mean[c]}; }
  __device__ __forceinline__ void update(State& st, const Ctx& ctx, int64_t i) const {
    const acc_t g = to_acc(dy[i]);
    st.a += g;
    st.b += g * (to_acc(x[i]) - ctx.mean);
  }
  __device__ __forceinline__ void finalize(int64_t c, const State& st) const {
    sum_dy[c] = st.a;
    sum_dy_xmu[c] = st.b;
    if (dweight != nullptr) dweight[c] = st.b * invstd[c];
  }
};

template <typename scalar_t>
struct NormalizeOp {
  using acc_t = scalar_t;
  struct Ctx {
    acc_t mean, scale, shift;
  };

  const scalar_t* x;
  const acc_t* mean;
  const acc_t* invstd;
  const scalar_t* weight;  // may be null
  const scalar_t* bias;    // may be null
  scalar_t* y;

  __device__ __forceinline__ Ctx channel(int64_t c) const {
    const acc_t w = weight != nullptr ? to_acc(weight[c]) : acc_t(1);
    const acc_t b = bias != nullptr ? to_acc(bias[c]) : acc_t(0);
    return {mean[c], invstd[c] * w, b};
  }
  __device__ __forceinline__ void apply(const Ctx& ctx, int64_t i) const {
    // (x - mean) first: subtracting before scaling avoids cancellation when |mean| >> std.
    store_acc(&y[i], (to_acc(x[i]) - ctx.mean) * ctx.scale + ctx.shift);
  }
};

template <typename scalar_t, bool kTrain>
struct BackwardInputOp {
  using acc_t = scalar_t;
  struct Ctx {
    acc_t mean;       // train only
    acc_t mean_dy;    // sum_dy / M
    acc_t k_xmu;      // invstd^2 * sum_dy_xmu / M
    acc_t scale;      // w * invstd
  };

  const scalar_t* dy;
  const scalar_t* x;
  const acc_t* mean;
  const acc_t* invstd;
  const scalar_t* weight;  // may be null
  const acc_t* sum_dy;
  const acc_t* sum_dy_xmu;
  scalar_t* dx;
  acc_t count;  // elements per channel, M

  __device__ __forceinline__ Ctx channel(int64_t c) const {
    const acc_t is = invstd[c];
    const acc_t w = weight != nullptr ? to_acc(weight[c]) : acc_t(1);
    Ctx ctx{acc_t(0), acc_t(0), acc_t(0), w * is};
    if (kTrain) {
      ctx.mean = mean[c];
      ctx.mean_dy = sum_dy[c] / count;
      ctx.k_xmu = is * is * sum_dy_xmu[c] / count;
    }
    return ctx;
  }
  __device__ __forceinline__ void apply(const Ctx& ctx, int64_t i) const {
    const acc_t g = to_acc(dy[i]);
    if (kTrain) {
      const acc_t xmu = to_acc(x[i]) - ctx.mean;
      store_acc(&dx[i], (g - ctx.mean_dy - xmu * ctx.k_xmu) * ctx.scale);
    } else {
      store_acc(&dx[i], g * ctx.scale);
    }
  }
};

template <typename scalar_t, typename acc_t>
__global__ void invstd_from_var_kernel(const scalar_t* var, acc_t eps, int64_t C, acc_t* invstd) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < C; c += step) {
    invstd[c] = acc_t(1) / sqrt(to_acc(var[c]) + eps);
  }
}

}  // namespace

template <typename scalar_t>
size_t bn_stats_workspace_bytes(int64_t N, int64_t C, int64_t S) {
  return channel_reduce_workspace_bytes<StatsOp<scalar_t>>(N, C, S);
}

template <typename scalar_t>
void bn_stats(const scalar_t* x, int64_t N, int64_t C, int64_t S, double eps, scalar_t* mean,
              scalar_t* invstd, scalar_t* var_unbiased, void* workspace,
              cudaStream_t stream) {
  using acc_t = scalar_t;
  const StatsOp<scalar_t> op{x, mean, invstd, var_unbiased, static_cast<acc_t>(eps)};
  run_channel_reduce(op, N, C, S, workspace, stream);
}

template <typename scalar_t>
void bn_stats_m2(const scalar_t* x, int64_t N, int64_t C, int64_t S, scalar_t* mean, scalar_t* m2, void* workspace,
                 cudaStream_t stream) {
  // StatsM2Op has StatsOp's State, so it needs the workspace bn_stats_workspace_bytes gives.
  static_assert(sizeof(typename StatsM2Op<scalar_t>::State) == sizeof(typename StatsOp<scalar_t>::State));
  const StatsM2Op<scalar_t> op{x, mean, m2};
  run_channel_reduce(op, N, C, S, workspace, stream);
}

template <typename scalar_t>
void bn_normalize(const scalar_t* x, const scalar_t* mean, const scalar_t* invstd,
                  const scalar_t* weight, const scalar_t* bias, scalar_t* y, int64_t N, int64_t C, int64_t S,
                  cudaStream_t stream) {
  const NormalizeOp<scalar_t> op{x, mean, invstd, weight, bias, y};
  run_channel_elementwise(op, N, C, S, stream);
}

template <typename scalar_t>
void bn_invstd_from_var(const scalar_t* var, double eps, int64_t C, scalar_t* invstd,
                        cudaStream_t stream) {
  using acc_t = scalar_t;
  constexpr int kThreads = 256;
  const int64_t blocks = clamp_val<int64_t>(ceil_div(C, kThreads), 1, 65535);
  launch_kernel(invstd_from_var_kernel<scalar_t, acc_t>, dim3(static_cast<unsigned>(blocks)), dim3(kThreads),
                stream, var, static_cast<acc_t>(eps), C, invstd);
}

template <typename scalar_t>
size_t bn_backward_workspace_bytes(int64_t N, int64_t C, int64_t S) {
  return channel_reduce_workspace_bytes<BackwardReduceOp<scalar_t>>(N, C, S);
}

template <typename scalar_t>
void bn_backward_reduce(const scalar_t* dy, const scalar_t* x, const scalar_t* mean,
                        const scalar_t* invstd, int64_t N, int64_t C, int64_t S,
                        scalar_t* sum_dy, scalar_t* sum_dy_xmu,
                        scalar_t* dweight, void* workspace, cudaStream_t stream) {
  const BackwardReduceOp<scalar_t> op{dy, x, mean, invstd, sum_dy, sum_dy_xmu, dweight};
  run_channel_reduce(op, N, C, S, workspace, stream);
}

template <typename scalar_t>
void bn_backward_input(const scalar_t* dy, const scalar_t* x, const scalar_t* mean,
                       const scalar_t* invstd, const scalar_t* weight,
                       const scalar_t* sum_dy, const scalar_t* sum_dy_xmu, int64_t N,
                       int64_t C, int64_t S, int64_t count, bool train, scalar_t* dx, cudaStream_t stream) {
  using acc_t = scalar_t;
  const acc_t m = static_cast<acc_t>(count);
  if (train) {
    const BackwardInputOp<scalar_t, true> op{dy, x, mean, invstd, weight, sum_dy, sum_dy_xmu, dx, m};
    run_channel_elementwise(op, N, C, S, stream);
  } else {
    const BackwardInputOp<scalar_t, false> op{dy, x, mean, invstd, weight, sum_dy, sum_dy_xmu, dx, m};
    run_channel_elementwise(op, N, C, S, stream);
  }
}

#define ZOO_INSTANTIATE_BN(T)                                                                                   \
  template size_t bn_stats_workspace_bytes<T>(int64_t, int64_t, int64_t);                                      \
  template void bn_stats<T>(const T*, int64_t, int64_t, int64_t, double, T*, T*,            \
                            T*, void*, cudaStream_t);                                                 \
  template void bn_stats_m2<T>(const T*, int64_t, int64_t, int64_t, T*, T*, void*, cudaStream_t);           \
  template void bn_normalize<T>(const T*, const T*, const T*, const T*, const T*, T*,       \
                                int64_t, int64_t, int64_t, cudaStream_t);                                       \
  template void bn_invstd_from_var<T>(const T*, double, int64_t, T*, cudaStream_t);                   \
  template size_t bn_backward_workspace_bytes<T>(int64_t, int64_t, int64_t);                                    \
  template void bn_backward_reduce<T>(const T*, const T*, const T*, const T*, int64_t,      \
                                      int64_t, int64_t, T*, T*, T*, void*,        \
                                      cudaStream_t);                                                            \
  template void bn_backward_input<T>(const T*, const T*, const T*, const T*, const T*,      \
                                     const T*, const T*, int64_t, int64_t, int64_t, int64_t, bool, \
                                     T*, cudaStream_t);

ZOO_INSTANTIATE_BN(float)
ZOO_INSTANTIATE_BN(double)

#undef ZOO_INSTANTIATE_BN

}  // namespace zoo::cuda::kernels
