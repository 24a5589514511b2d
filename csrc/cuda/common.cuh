// Shared device/host helpers for zoo's hand-written CUDA kernels.
// Device-only code (included from .cu files only; no torch headers here).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace zoo::cuda::detail {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// ---------------------------------------------------------------------------
// Host helpers
// ---------------------------------------------------------------------------

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Smallest power of two >= v (v >= 1), capped at `cap` (a power of two).
inline int next_pow2_capped(int64_t v, int cap) {
  int p = 1;
  while (p < cap && p < v) p <<= 1;
  return p;
}

template <typename T>
inline T clamp_val(T v, T lo, T hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Number of SMs of the current device, cached per device: launch plans (and
// therefore workspace sizes) must be identical between the size query and the launch.
inline int num_sms() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices];  // zero-initialised (static storage)
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) {
    (void)cudaGetLastError();  // do not leave a sticky-looking error for the launch check
    return 1;
  }
  int n = cache[dev].load(std::memory_order_relaxed);
  if (n > 0) return n;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) {
    (void)cudaGetLastError();
    n = 1;
  }
  cache[dev].store(n, std::memory_order_relaxed);
  return n;
}

// Blocks of `threads` for a grid-stride loop over `work` items: enough to give each item a thread,
// at most 32 per SM (the loop covers the rest), at least 1.
inline dim3 grid_stride_blocks(int64_t work, int threads) {
  const int64_t blocks = std::min<int64_t>(ceil_div(work, threads), int64_t(num_sms()) * 32);
  return dim3(static_cast<unsigned>(std::max<int64_t>(blocks, 1)));
}

// Every kernel launch goes through here (one place for the launch syntax).
template <typename Kernel, typename... Args>
inline void launch_kernel(Kernel kernel, dim3 grid, dim3 block, cudaStream_t stream, Args... args) {
  kernel<<<grid, block, 0, stream>>>(args...);
}

// ---------------------------------------------------------------------------
// Scalar conversions to/from the accumulation type (the element type itself for
// float and double; the hook where a 16-bit type would widen)
// ---------------------------------------------------------------------------

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }

// Stores an accumulator value into an element.
__device__ __forceinline__ void store_acc(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_acc(double* p, double v) { *p = v; }

// ---------------------------------------------------------------------------
// Reduction states. Each provides identity(), merge(a, b) and shfl_down(off).
// ---------------------------------------------------------------------------

// Welford running (count, mean, M2). Partial states are merged with Chan et al.'s
// parallel formula, which stays stable where E[x^2] - E[x]^2 would cancel.
template <typename acc_t>
struct WelfordState {
  acc_t mean;
  acc_t m2;
  int64_t n;

  __device__ __forceinline__ static WelfordState identity() { return {acc_t(0), acc_t(0), 0}; }

  __device__ __forceinline__ void push(acc_t v) {
    ++n;
    const acc_t d = v - mean;
    mean += d / static_cast<acc_t>(n);
    m2 += d * (v - mean);  // d and (v - new mean) share a sign, so M2 never goes negative
  }

  __device__ __forceinline__ static WelfordState merge(const WelfordState& a, const WelfordState& b) {
    const int64_t n = a.n + b.n;
    if (n == 0) return identity();
    // Written so that merging with an empty side returns the other side exactly.
    const acc_t nb_over_n = static_cast<acc_t>(b.n) / static_cast<acc_t>(n);
    const acc_t delta = b.mean - a.mean;
    WelfordState r;
    r.mean = a.mean + delta * nb_over_n;
    r.m2 = a.m2 + b.m2 + delta * delta * static_cast<acc_t>(a.n) * nb_over_n;
    r.n = n;
    return r;
  }

  __device__ __forceinline__ WelfordState shfl_down(unsigned off) const {
    WelfordState r;
    r.mean = __shfl_down_sync(kFullMask, mean, off);
    r.m2 = __shfl_down_sync(kFullMask, m2, off);
    r.n = static_cast<int64_t>(__shfl_down_sync(kFullMask, static_cast<long long>(n), off));
    return r;
  }
};

// Two independent sums (used for sum(dy) and sum(dy * (x - mean))).
template <typename acc_t>
struct SumPairState {
  acc_t a;
  acc_t b;
  __device__ __forceinline__ static SumPairState identity() { return {acc_t(0), acc_t(0)}; }
  __device__ __forceinline__ static SumPairState merge(const SumPairState& x, const SumPairState& y) {
    return {x.a + y.a, x.b + y.b};
  }
  __device__ __forceinline__ SumPairState shfl_down(unsigned off) const {
    return {__shfl_down_sync(kFullMask, a, off), __shfl_down_sync(kFullMask, b, off)};
  }
};

template <typename acc_t>
struct SumState {
  acc_t a;
  __device__ __forceinline__ static SumState identity() { return {acc_t(0)}; }
  __device__ __forceinline__ static SumState merge(const SumState& x, const SumState& y) { return {x.a + y.a}; }
  __device__ __forceinline__ SumState shfl_down(unsigned off) const { return {__shfl_down_sync(kFullMask, a, off)}; }
};

// Block-wide reduction of `v` over all threads that share the same value of
// (linear tid % group), `group` a power of two <= 32 (group == blockDim.x for the
// channels-innermost kernels, 1 when the whole block works on one channel).
// The block size must be a multiple of 32 and <= kThreads. Every thread must call
// this; the result is valid in threads with linear tid < group. `smem` must hold
// kThreads states; callers must __syncthreads() before reusing it.
template <int kThreads, typename State>
__device__ __forceinline__ State block_reduce(State v, int group, State* smem) {
  const int tid = threadIdx.x + threadIdx.y * blockDim.x;
  const int lane = tid % kWarpSize;
  const int warp = tid / kWarpSize;
  const int nwarps = (blockDim.x * blockDim.y) / kWarpSize;
  // Lanes with equal (lane % group) hold the same channel; fold the upper half of
  // the warp onto the lower half. After the loop lanes < group hold the warp result
  // (lanes >= off merged garbage with themselves but are never read).
  for (int off = kWarpSize / 2; off >= group; off >>= 1) {
    v = State::merge(v, v.shfl_down(static_cast<unsigned>(off)));
  }
  if (lane < group) smem[warp * group + lane] = v;
  __syncthreads();
  if (tid < group) {
    State r = smem[tid];
    for (int w = 1; w < nwarps; ++w) r = State::merge(r, smem[w * group + tid]);
    v = r;
  }
  return v;
}

// Full-warp reduction; result valid in lane 0.
template <typename State>
__device__ __forceinline__ State warp_reduce(State v) {
  for (int off = kWarpSize / 2; off > 0; off >>= 1) {
    v = State::merge(v, v.shfl_down(static_cast<unsigned>(off)));
  }
  return v;
}

// ---------------------------------------------------------------------------
// Per-channel reductions over a tensor viewed as (N, C, S): element (n, c, s) lives
// at (n * C + c) * S + s. S == 1 is the channels-innermost case (rows of C).
//
// An Op provides:
//   using State;                          reduction state (see above)
//   Ctx channel(int64_t c) const;         per-channel constants (e.g. the mean)
//   void update(State&, const Ctx&, int64_t idx) const;   fold element idx in
//   void finalize(int64_t c, const State&) const;         write channel c's result
// ---------------------------------------------------------------------------

constexpr int kReduceThreads = 256;
// Minimum elements per thread before a channel is split across more blocks:
// below this, extra blocks cost more in merging than they gain.
constexpr int64_t kMinElemsPerThread = 16;

struct ReducePlan {
  dim3 grid;
  dim3 block;
  int splits_n = 1;  // planar: row (n) splits; rows: row (m) splits
  int splits_s = 1;  // planar: column (s) splits
  int splits() const { return splits_n * splits_s; }
};

inline ReducePlan plan_channel_reduce(int64_t N, int64_t C, int64_t S) {
  ReducePlan p;
  // Enough resident blocks to fill every SM (256-thread blocks, 8 per SM).
  const int64_t target_blocks = static_cast<int64_t>(num_sms()) * (2048 / kReduceThreads);
  if (S > 1) {
    // Planar: one block (or several splits) per channel, x over s, y over n.
    const int tx = next_pow2_capped(S, kReduceThreads);
    const int ty = kReduceThreads / tx;
    const int64_t per_channel = N * S;
    int64_t want = ceil_div(target_blocks, C > 0 ? C : 1);
    want = clamp_val<int64_t>(want, 1, std::max<int64_t>(1, per_channel / (kReduceThreads * kMinElemsPerThread)));
    want = clamp_val<int64_t>(want, 1, 1024);
    const int64_t sn = clamp_val<int64_t>(want, 1, ceil_div(N, ty));
    const int64_t ss = clamp_val<int64_t>(ceil_div(want, sn), 1, ceil_div(S, tx));
    p.block = dim3(tx, ty, 1);
    p.splits_n = static_cast<int>(sn);
    p.splits_s = static_cast<int>(ss);
    p.grid = dim3(static_cast<unsigned>(clamp_val<int64_t>(C, 1, 0x7fffffff)), static_cast<unsigned>(sn * ss), 1);
  } else {
    // Channels-innermost (M x C): x over channels (coalesced), y over rows.
    const int64_t M = N;
    const int tx = next_pow2_capped(C, kWarpSize);
    const int ty = kReduceThreads / tx;
    const int64_t gx = clamp_val<int64_t>(ceil_div(C, tx), 1, 0x7fffffff);
    int64_t want = ceil_div(target_blocks, gx);
    want = clamp_val<int64_t>(want, 1, std::max<int64_t>(1, M / (ty * kMinElemsPerThread)));
    want = clamp_val<int64_t>(want, 1, 1024);
    p.block = dim3(tx, ty, 1);
    p.splits_n = static_cast<int>(want);
    p.splits_s = 1;
    p.grid = dim3(static_cast<unsigned>(gx), static_cast<unsigned>(want), 1);
  }
  return p;
}

template <typename Op>
__global__ void __launch_bounds__(kReduceThreads)
reduce_planar_kernel(Op op, int64_t N, int64_t C, int64_t S, int splits_n, int splits_s,
                     typename Op::State* partial) {
  using State = typename Op::State;
  __shared__ State smem[kReduceThreads];
  const int splits = splits_n * splits_s;
  const int split = blockIdx.y;
  const int sn = split / splits_s;
  const int ss = split % splits_s;
  const int64_t row_step = static_cast<int64_t>(blockDim.y) * splits_n;
  const int64_t col_step = static_cast<int64_t>(blockDim.x) * splits_s;
  const int64_t n0 = static_cast<int64_t>(sn) * blockDim.y + threadIdx.y;
  const int64_t s0 = static_cast<int64_t>(ss) * blockDim.x + threadIdx.x;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    const auto ctx = op.channel(c);
    State st = State::identity();
    for (int64_t n = n0; n < N; n += row_step) {
      const int64_t base = (n * C + c) * S;
      for (int64_t s = s0; s < S; s += col_step) op.update(st, ctx, base + s);
    }
    st = block_reduce<kReduceThreads>(st, 1, smem);
    if (threadIdx.x == 0 && threadIdx.y == 0) {
      if (splits == 1) {
        op.finalize(c, st);
      } else {
        partial[c * splits + split] = st;
      }
    }
    __syncthreads();  // smem is reused by the next channel
  }
}

template <typename Op>
__global__ void __launch_bounds__(kReduceThreads)
reduce_rows_kernel(Op op, int64_t M, int64_t C, int splits, typename Op::State* partial) {
  using State = typename Op::State;
  __shared__ State smem[kReduceThreads];
  const int tx = blockDim.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  const int64_t m_step = static_cast<int64_t>(blockDim.y) * gridDim.y;
  for (int64_t c0 = static_cast<int64_t>(blockIdx.x) * tx; c0 < C; c0 += static_cast<int64_t>(gridDim.x) * tx) {
    const int64_t c = c0 + threadIdx.x;
    State st = State::identity();
    if (c < C) {
      const auto ctx = op.channel(c);
      for (int64_t m = m0; m < M; m += m_step) op.update(st, ctx, m * C + c);
    }
    // Threads in a column (same threadIdx.x == tid % tx) share a channel.
    st = block_reduce<kReduceThreads>(st, tx, smem);
    if (threadIdx.y == 0 && c < C) {
      if (splits == 1) {
        op.finalize(c, st);
      } else {
        partial[c * splits + blockIdx.y] = st;
      }
    }
    __syncthreads();
  }
}

// Second pass when a channel was split over several blocks: one warp per channel
// merges the `splits` partial states (stored contiguously per channel).
template <typename Op>
__global__ void __launch_bounds__(kReduceThreads)
reduce_finalize_kernel(Op op, int64_t C, int splits, const typename Op::State* partial) {
  using State = typename Op::State;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t warps_per_block = blockDim.x / kWarpSize;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * warps_per_block + threadIdx.x / kWarpSize;
  for (int64_t c = first; c < C; c += static_cast<int64_t>(gridDim.x) * warps_per_block) {
    State st = State::identity();
    for (int k = lane; k < splits; k += kWarpSize) st = State::merge(st, partial[c * splits + k]);
    st = warp_reduce(st);
    if (lane == 0) op.finalize(c, st);
  }
}

template <typename Op>
inline size_t channel_reduce_workspace_bytes(int64_t N, int64_t C, int64_t S) {
  const ReducePlan p = plan_channel_reduce(N, C, S);
  return p.splits() > 1 ? static_cast<size_t>(C) * p.splits() * sizeof(typename Op::State) : 0;
}

// Runs op over every channel; `workspace` must hold channel_reduce_workspace_bytes<Op>(N, C, S)
// bytes (may be null when that is 0). N, C and S are positive: the ops refuse empty input (checks.h).
template <typename Op>
inline void run_channel_reduce(const Op& op, int64_t N, int64_t C, int64_t S, void* workspace,
                               cudaStream_t stream) {
  using State = typename Op::State;
  const ReducePlan p = plan_channel_reduce(N, C, S);
  State* partial = static_cast<State*>(workspace);
  if (S > 1) {
    launch_kernel(reduce_planar_kernel<Op>, p.grid, p.block, stream, op, N, C, S, p.splits_n, p.splits_s, partial);
  } else {
    launch_kernel(reduce_rows_kernel<Op>, p.grid, p.block, stream, op, N, C, p.splits_n, partial);
  }
  if (p.splits() > 1) {
    const int64_t warps_per_block = kReduceThreads / kWarpSize;
    const int64_t blocks = clamp_val<int64_t>(ceil_div(C, warps_per_block), 1, 65535);
    launch_kernel(reduce_finalize_kernel<Op>, dim3(static_cast<unsigned>(blocks)), dim3(kReduceThreads), stream,
                  op, C, p.splits(), static_cast<const State*>(partial));
  }
}

// ---------------------------------------------------------------------------
// Per-channel element-wise maps over the same (N, C, S) view. An Op provides
//   Ctx channel(int64_t c) const;  void apply(const Ctx&, int64_t idx) const;
// Per-channel constants are loaded once per row/column rather than per element,
// and no integer division happens inside the loops.
// ---------------------------------------------------------------------------

constexpr int kElementwiseThreads = 256;

// Planar: "rows" are the N*C planes (plane p has channel p % C), columns are s.
// Consecutive planes are contiguous, so small S still gives coalesced warps.
template <typename Op>
__global__ void __launch_bounds__(kElementwiseThreads)
elementwise_planar_kernel(Op op, int64_t rows, int64_t C, int64_t S) {
  int64_t row = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  const int64_t s0 = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows || s0 >= S) return;  // no barriers below
  const int64_t row_step = static_cast<int64_t>(blockDim.y) * gridDim.y;
  const int64_t s_step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  // Track the channel incrementally: c = row % C without a division per row.
  int64_t c = row % C;
  const int64_t dc = row_step % C;
  for (; row < rows; row += row_step) {
    const auto ctx = op.channel(c);
    const int64_t base = row * S;
    for (int64_t s = s0; s < S; s += s_step) op.apply(ctx, base + s);
    c += dc;
    if (c >= C) c -= C;
  }
}

// Channels-innermost: x over channels, y over rows.
template <typename Op>
__global__ void __launch_bounds__(kElementwiseThreads)
elementwise_rows_kernel(Op op, int64_t M, int64_t C) {
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  const int64_t m_step = static_cast<int64_t>(blockDim.y) * gridDim.y;
  const int64_t c_step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < C; c += c_step) {
    const auto ctx = op.channel(c);
    for (int64_t m = m0; m < M; m += m_step) op.apply(ctx, m * C + c);
  }
}

template <typename Op>
inline void run_channel_elementwise(const Op& op, int64_t N, int64_t C, int64_t S, cudaStream_t stream) {
  const int64_t target_blocks = static_cast<int64_t>(num_sms()) * 32;
  if (S > 1) {
    const int64_t rows = N * C;
    const int tx = next_pow2_capped(S, kElementwiseThreads);
    const int ty = kElementwiseThreads / tx;
    const int64_t gy = clamp_val<int64_t>(ceil_div(rows, ty), 1, 65535);
    const int64_t gx = clamp_val<int64_t>(target_blocks / gy, 1, clamp_val<int64_t>(ceil_div(S, tx), 1, 65535));
    launch_kernel(elementwise_planar_kernel<Op>, dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)),
                  dim3(tx, ty), stream, op, rows, C, S);
  } else {
    const int64_t M = N;
    const int tx = next_pow2_capped(C, kWarpSize);
    const int ty = kElementwiseThreads / tx;
    const int64_t gx = clamp_val<int64_t>(ceil_div(C, tx), 1, 0x7fffffff);
    const int64_t gy = clamp_val<int64_t>(target_blocks / gx, 1, clamp_val<int64_t>(ceil_div(M, ty), 1, 65535));
    launch_kernel(elementwise_rows_kernel<Op>, dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)),
                  dim3(tx, ty), stream, op, M, C);
  }
}

}  // namespace zoo::cuda::detail
