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

// A channel's normalisation, y = (x - mean) * scale + shift with scale = invstd * weight and
// shift = bias. The fused activation's backward recomputes the forward's y through these same
// functions, so both round alike.
template <typename acc_t, typename scalar_t>
__device__ __forceinline__ acc_t channel_scale(const acc_t* invstd, const scalar_t* weight, int64_t c) {
  return invstd[c] * (weight != nullptr ? to_acc(weight[c]) : acc_t(1));
}

template <typename acc_t, typename scalar_t>
__device__ __forceinline__ acc_t channel_shift(const scalar_t* bias, int64_t c) {
  return bias != nullptr ? to_acc(bias[c]) : acc_t(0);
}

template <typename acc_t>
__device__ __forceinline__ acc_t normalized_value(acc_t x, acc_t mean, acc_t scale, acc_t shift) {
  // (x - mean) first: subtracting before scaling avoids cancellation when |mean| >> std.
  return (x - mean) * scale + shift;
}

// dy as the gradient of batch norm's own output: through the fused activation's derivative at the
// forward's pre-activation (recomputed).
template <typename Act, typename acc_t>
__device__ __forceinline__ acc_t through_activation(const Act& act, acc_t dy, acc_t x, acc_t mean, acc_t scale,
                                                    acc_t shift) {
  if constexpr (Act::kIdentity) return dy;
  return act.grad(dy, normalized_value(x, mean, scale, shift));
}


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

// With an activation, dy is its output gradient (through_activation; needs invstd, weight, bias).
template <typename scalar_t, typename Act>
struct BackwardReduceOp {
  using acc_t = scalar_t;
  using State = SumPairState<acc_t>;
  struct Ctx {
    acc_t mean, scale, shift;  // scale, shift: with an activation only
  };

  Act act;
  const scalar_t* dy;
  const scalar_t* x;
  const acc_t* mean;
  const acc_t* invstd;
  const scalar_t* weight;  // may be null
  const scalar_t* bias;    // may be null
  acc_t* sum_dy;
  acc_t* sum_dy_xmu;
  acc_t* dweight;  // may be null

  __device__ __forceinline__ Ctx channel(int64_t c) const {
    if constexpr (!Act::kIdentity) return {mean[c], channel_scale(invstd, weight, c), channel_shift<acc_t>(bias, c)};
    return {mean[c], acc_t(0), acc_t(0)};
  }
  __device__ __forceinline__ void update(State& st, const Ctx& ctx, int64_t i) const {
    const acc_t xi = to_acc(x[i]);
    const acc_t g = through_activation(act, to_acc(dy[i]), xi, ctx.mean, ctx.scale, ctx.shift);
    st.a += g;
    st.b += g * (xi - ctx.mean);
  }
  __device__ __forceinline__ void finalize(int64_t c, const State& st) const {
    sum_dy[c] = st.a;
    sum_dy_xmu[c] = st.b;
    if (dweight != nullptr) dweight[c] = st.b * invstd[c];
  }
};

template <typename scalar_t, typename Act>
struct NormalizeOp {
  using acc_t = scalar_t;
  struct Ctx {
    acc_t mean, scale, shift;
  };

  Act act;
  const scalar_t* x;
  const acc_t* mean;
  const acc_t* invstd;
  const scalar_t* weight;  // may be null
  const scalar_t* bias;    // may be null
  scalar_t* y;

  __device__ __forceinline__ Ctx channel(int64_t c) const {
    return {mean[c], channel_scale(invstd, weight, c), channel_shift<acc_t>(bias, c)};
  }
  __device__ __forceinline__ void apply(const Ctx& ctx, int64_t i) const {
    const acc_t v = normalized_value(to_acc(x[i]), ctx.mean, ctx.scale, ctx.shift);
    store_acc(&y[i], act(v));
  }
};

// With an activation (training only), dy is its output gradient (through_activation).
template <typename scalar_t, bool kTrain, typename Act>
struct BackwardInputOp {
  using acc_t = scalar_t;
  struct Ctx {
    acc_t mean;       // train only
    acc_t mean_dy;    // sum_dy / M
    acc_t k_xmu;      // invstd^2 * sum_dy_xmu / M
    acc_t scale;      // w * invstd
    acc_t shift;      // bias: with an activation only
  };

  Act act;
  const scalar_t* dy;
  const scalar_t* x;
  const acc_t* mean;
  const acc_t* invstd;
  const scalar_t* weight;  // may be null
  const scalar_t* bias;    // may be null
  const acc_t* sum_dy;
  const acc_t* sum_dy_xmu;
  scalar_t* dx;
  acc_t count;  // elements per channel, M

  __device__ __forceinline__ Ctx channel(int64_t c) const {
    const acc_t is = invstd[c];
    Ctx ctx{acc_t(0), acc_t(0), acc_t(0), channel_scale(invstd, weight, c), acc_t(0)};
    if (kTrain) {
      ctx.mean = mean[c];
      ctx.mean_dy = sum_dy[c] / count;
      ctx.k_xmu = is * is * sum_dy_xmu[c] / count;
    }
    if (!Act::kIdentity) ctx.shift = channel_shift<acc_t>(bias, c);
    return ctx;
  }
  __device__ __forceinline__ void apply(const Ctx& ctx, int64_t i) const {
    if (kTrain) {
      const acc_t xi = to_acc(x[i]);
      const acc_t g = through_activation(act, to_acc(dy[i]), xi, ctx.mean, ctx.scale, ctx.shift);
      store_acc(&dx[i], (g - ctx.mean_dy - (xi - ctx.mean) * ctx.k_xmu) * ctx.scale);
    } else {
      store_acc(&dx[i], to_acc(dy[i]) * ctx.scale);
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
                  activation::Activation act, cudaStream_t stream) {
  activation::dispatch<scalar_t>(act, [&](auto f) {
    const NormalizeOp<scalar_t, decltype(f)> op{f, x, mean, invstd, weight, bias, y};
    run_channel_elementwise(op, N, C, S, stream);
  });
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
  return channel_reduce_workspace_bytes<BackwardReduceOp<scalar_t, activation::None<scalar_t>>>(N, C, S);
}

template <typename scalar_t>
void bn_backward_reduce(const scalar_t* dy, const scalar_t* x, const scalar_t* mean,
                        const scalar_t* invstd, const scalar_t* weight, const scalar_t* bias, activation::Activation act,
                        int64_t N, int64_t C, int64_t S, scalar_t* sum_dy, scalar_t* sum_dy_xmu,
                        scalar_t* dweight, void* workspace, cudaStream_t stream) {
  activation::dispatch<scalar_t>(act, [&](auto f) {
    using Op = BackwardReduceOp<scalar_t, decltype(f)>;
    // Every variant has the same State, so the same workspace (bn_backward_workspace_bytes).
    static_assert(sizeof(typename Op::State) ==
                  sizeof(typename BackwardReduceOp<scalar_t, activation::None<scalar_t>>::State));
    const Op op{f, dy, x, mean, invstd, weight, bias, sum_dy, sum_dy_xmu, dweight};
    run_channel_reduce(op, N, C, S, workspace, stream);
  });
}

template <typename scalar_t>
void bn_backward_input(const scalar_t* dy, const scalar_t* x, const scalar_t* mean,
                       const scalar_t* invstd, const scalar_t* weight, const scalar_t* bias, activation::Activation act,
                       const scalar_t* sum_dy, const scalar_t* sum_dy_xmu, int64_t N,
                       int64_t C, int64_t S, int64_t count, bool train, scalar_t* dx, cudaStream_t stream) {
  using acc_t = scalar_t;
  const acc_t m = static_cast<acc_t>(count);
  if (!train) {
    using Op = BackwardInputOp<scalar_t, false, activation::None<scalar_t>>;
    const Op op{{}, dy, x, mean, invstd, weight, bias, sum_dy, sum_dy_xmu, dx, m};
    run_channel_elementwise(op, N, C, S, stream);
    return;
  }
  activation::dispatch<scalar_t>(act, [&](auto f) {
    const BackwardInputOp<scalar_t, true, decltype(f)> op{f, dy, x, mean, invstd, weight, bias, sum_dy, sum_dy_xmu,
                                                          dx, m};
    run_channel_elementwise(op, N, C, S, stream);
  });
}

#define ZOO_INSTANTIATE_BN(T)                                                                                   \
  template size_t bn_stats_workspace_bytes<T>(int64_t, int64_t, int64_t);                                      \
  template void bn_stats<T>(const T*, int64_t, int64_t, int64_t, double, T*, T*,            \
                            T*, void*, cudaStream_t);                                                 \
  template void bn_stats_m2<T>(const T*, int64_t, int64_t, int64_t, T*, T*, void*, cudaStream_t);           \
  template void bn_normalize<T>(const T*, const T*, const T*, const T*, const T*, T*,       \
                                int64_t, int64_t, int64_t, activation::Activation, cudaStream_t);                                 \
  template void bn_invstd_from_var<T>(const T*, double, int64_t, T*, cudaStream_t);                   \
  template size_t bn_backward_workspace_bytes<T>(int64_t, int64_t, int64_t);                                    \
  template void bn_backward_reduce<T>(const T*, const T*, const T*, const T*, const T*, const T*,                \
                                      activation::Activation,       \
                                      int64_t, int64_t, int64_t, T*, T*, T*, void*, cudaStream_t);              \
  template void bn_backward_input<T>(const T*, const T*, const T*, const T*, const T*, const T*,                 \
                                     activation::Activation,        \
                                     const T*, const T*, int64_t, int64_t, int64_t, int64_t, bool,          \
                                     T*, cudaStream_t);

ZOO_INSTANTIATE_BN(float)
ZOO_INSTANTIATE_BN(double)

#undef ZOO_INSTANTIATE_BN

}  // namespace zoo::cuda::kernels
