// CPU batch norm: statistics, normalisation and the fused backward.
//
// Two memory layouts are handled without copies:
//  - planar (NCHW / NCL contiguous, spatial size S > 1): each channel is N runs
//    of S contiguous values. Work is split by channel, and a channel's
//    statistics and its normalisation (or its gradient sums and dx) are done
//    back to back so the second pass finds the channel still in cache.
//  - rows ((N, C), channels-last NHWC, or S == 1): x is M = N*S rows of C
//    contiguous values. Work is split by rows with per-thread per-channel
//    partials that are merged afterwards; inner loops run along channels.
#include "activation.h"
#include "checks.h"
#include "cpu/memory.h"
#include "cpu/parallel.h"
#include "cpu/streaming.h"
#include "empty_batch.h"
#include "running_stats.h"
#include "cpu/welford.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace zoo::cpu {
namespace {

struct ChannelLayout {
  bool rows;  // channels innermost: (M, C) with M = N * S
  int64_t N, C, S;
  int64_t M() const { return N * S; }
  int64_t count() const { return N * S; }  // values per channel
  template <typename scalar_t>
  int64_t bytes() const { return N * C * S * static_cast<int64_t>(sizeof(scalar_t)); }
};

// x's layout, for a checked, non-empty x.
ChannelLayout describe(const at::Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t S = x.numel() / (N * C);
  const bool contiguous = x.is_contiguous();
  const bool channels_last = x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  TORCH_CHECK_VALUE(contiguous || channels_last,
                    "zoo batch_norm: x must be contiguous or channels-last, got strides ", x.strides());
  return {S == 1 || !contiguous, N, C, S};
}

void check_device(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.device().is_cpu(), "zoo batch_norm (CPU kernel): x is on ", x.device());
}

using checks::data_or_null;

// The fused activation (activation.h) is a template argument of the kernels: `Act act` below,
// activation::None<scalar_t> for plain batch norm.

// Normalisation as one multiply-add, y = x * scale + shift. The fused activation's backward
// recomputes the forward's y with this same function, so both must round alike: one
// expression, contracted (or not) the same way wherever it is inlined.
template <typename scalar_t>
inline scalar_t affine(scalar_t x, scalar_t scale, scalar_t shift) {
  return x * scale + shift;
}

// The output of the layer at x: batch norm, then the fused activation.
template <typename Act, typename scalar_t>
inline scalar_t normalized(Act act, scalar_t x, scalar_t scale, scalar_t shift) {
  return act(affine(x, scale, shift));
}

// dy (the layer's output gradient) as the gradient of batch norm's own output: through the fused
// activation's derivative at the forward's pre-activation, recomputed from x.
template <typename Act, typename scalar_t>
inline scalar_t through_activation(Act act, scalar_t dy, scalar_t x, scalar_t scale, scalar_t shift) {
  if constexpr (Act::kIdentity) return dy;
  return act.grad(dy, affine(x, scale, shift));
}

// A channel's (scale, shift) in training, from its statistics as the op returns them (in x's
// dtype, which is all the backward gets), computed in double.
template <typename scalar_t>
struct ChannelAffine {
  scalar_t scale = 1, shift = 0;
};

template <typename scalar_t>
ChannelAffine<scalar_t> channel_affine(scalar_t mean, scalar_t invstd, const scalar_t* weight, const scalar_t* bias,
                                       int64_t c) {
  const double scale = static_cast<double>(invstd) * (weight ? static_cast<double>(weight[c]) : 1.0);
  const double shift = (bias ? static_cast<double>(bias[c]) : 0.0) - static_cast<double>(mean) * scale;
  return {static_cast<scalar_t>(scale), static_cast<scalar_t>(shift)};
}

// y = act(x * scale + shift) over one run of n values of a single channel.
template <typename Act, typename scalar_t>
inline void affine_run(Act act, const scalar_t* x, scalar_t* y, int64_t n, scalar_t scale, scalar_t shift) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = normalized(act, x[i], scale, shift);
}

// affine_run with non-temporal stores where the build has them (stream_run).
template <typename Act, typename scalar_t>
inline void affine_run_streaming(Act act, const scalar_t* x, scalar_t* y, int64_t n, scalar_t scale,
                                 scalar_t shift) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<scalar_t, float>) {
    // An AVX-512 build has FMA, so the scalar affine() contracts to the same fused multiply-add;
    // the activation's operators work on the register as a GCC vector (Float16).
    const __m512 s = _mm512_set1_ps(scale), t = _mm512_set1_ps(shift);
    stream_run(y, n, [&](int64_t i) { return normalized(act, x[i], scale, shift); },
               [&](int64_t i) { return __m512(act(Float16(_mm512_fmadd_ps(_mm512_loadu_ps(x + i), s, t)))); });
    return;
  }
#endif
  affine_run(act, x, y, n, scale, shift);
}

// y[r, c] = act(x[r, c] * scale[c] + shift[c]) for rows [begin, end).
template <typename Act, typename scalar_t>
inline void affine_rows(Act act, const scalar_t* x, scalar_t* y, int64_t begin, int64_t end, int64_t C,
                        const scalar_t* scale, const scalar_t* shift) {
  for (int64_t r = begin; r < end; ++r) {
    const scalar_t* xr = x + r * C;
    scalar_t* yr = y + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = normalized(act, xr[c], scale[c], shift[c]);
  }
}

// Rows per task in the rows layout ((N, C) input, channels-last): kGrainElements (cpu/parallel.h) worth,
// and at least kRowsPerTask, since each task's per-channel partial sums (C of them) are merged afterwards
// and the merge must stay small next to the task's work.
constexpr int64_t kRowsPerTask = 64;

int64_t rows_per_task(int64_t C) { return std::max<int64_t>(kRowsPerTask, kGrainElements / C); }

// Channels per parallel task in the planar kernels: tiny inputs stay on one
// thread, where a hand-off to another would cost more than the work.
int64_t channels_per_task(const ChannelLayout& L) {
  return std::max<int64_t>(1, kGrainElements / L.count());
}

template <typename Act, typename scalar_t>
void apply_channel_affine(Act act, const scalar_t* x, scalar_t* y, const ChannelLayout& L,
                          const scalar_t* scale, const scalar_t* shift) {
  if (L.rows) {
    at::parallel_for(0, L.M(), rows_per_task(L.C), [&](int64_t begin, int64_t end) {
      affine_rows(act, x, y, begin, end, L.C, scale, shift);
    });
  } else {
    const int64_t grain = std::max<int64_t>(1, kGrainElements / L.S);
    at::parallel_for(0, L.N * L.C, grain, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t c = plane % L.C;
        affine_run(act, x + plane * L.S, y + plane * L.S, L.S, scale[c], shift[c]);
      }
    });
  }
}

// Per-channel statistics of a (M, C) row layout.
template <typename scalar_t>
std::vector<Welford> row_statistics(const scalar_t* x, int64_t M, int64_t C) {
  // Rows per block: the block is read twice, so keep it within L2 (~256 KiB of float);
  // fewer, larger blocks mean fewer per-channel merges, which cost more than the adds.
  const int64_t block_rows = std::max<int64_t>(16, 65536 / C);
  std::vector<std::vector<Welford>> partial(at::get_num_threads(), std::vector<Welford>(C));
  at::parallel_for(0, M, std::max(block_rows, rows_per_task(C)), [&](int64_t begin, int64_t end) {
    std::vector<Welford>& acc = partial[at::get_thread_num()];
    std::vector<scalar_t> sum(C), m2(C);
    for (int64_t r0 = begin; r0 < end; r0 += block_rows) {
      const int64_t r1 = std::min(end, r0 + block_rows);
      std::fill(sum.begin(), sum.end(), scalar_t(0));
      std::fill(m2.begin(), m2.end(), scalar_t(0));
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* xr = x + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) sum[c] += xr[c];
      }
      const scalar_t inv_len = scalar_t(1) / static_cast<scalar_t>(r1 - r0);
      for (int64_t c = 0; c < C; ++c) sum[c] *= inv_len;  // now the block mean
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* xr = x + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const scalar_t d = xr[c] - sum[c];
          m2[c] += d * d;
        }
      }
      for (int64_t c = 0; c < C; ++c) acc[c].merge(r1 - r0, sum[c], m2[c]);
    }
  });
  std::vector<Welford> total(C);
  for (const auto& p : partial)
    for (int64_t c = 0; c < C; ++c) total[c].merge(p[c]);
  return total;
}

struct ChannelStats {
  double mean, invstd, var_unbiased;
};

ChannelStats finish(const Welford& w, double eps) {
  const double var = w.m2 / static_cast<double>(w.count);
  return {w.mean, 1.0 / std::sqrt(var + eps), w.m2 / static_cast<double>(w.count - 1)};
}

// Every channel's affine as two arrays, the form the rows kernels read (one vector load per C values each).
template <typename scalar_t>
struct AffineArrays {
  std::vector<scalar_t> scale, shift;
};

template <typename scalar_t, typename AffineOf>
AffineArrays<scalar_t> affine_arrays(int64_t C, const AffineOf& affine_of) {
  AffineArrays<scalar_t> arrays{std::vector<scalar_t>(C), std::vector<scalar_t>(C)};
  for (int64_t c = 0; c < C; ++c) {
    const ChannelAffine<scalar_t> a = affine_of(c);
    arrays.scale[c] = a.scale;
    arrays.shift[c] = a.shift;
  }
  return arrays;
}

template <typename Act, typename scalar_t>
void train_forward(Act act, const scalar_t* x, const scalar_t* weight, const scalar_t* bias,
                   const ChannelLayout& L, double eps, scalar_t* y, scalar_t* mean_out,
                   scalar_t* invstd_out, scalar_t* var_out) {
  // Stores channel c's statistics and returns its affine, from the stored values (as the backward gets them).
  auto store = [&](int64_t c, const Welford& w) {
    const ChannelStats s = finish(w, eps);
    mean_out[c] = static_cast<scalar_t>(s.mean);
    invstd_out[c] = static_cast<scalar_t>(s.invstd);
    var_out[c] = static_cast<scalar_t>(s.var_unbiased);
    return channel_affine(mean_out[c], invstd_out[c], weight, bias, c);
  };

  if (L.rows) {
    const std::vector<Welford> stats = row_statistics(x, L.M(), L.C);
    const auto a = affine_arrays<scalar_t>(L.C, [&](int64_t c) { return store(c, stats[c]); });
    apply_channel_affine(act, x, y, L, a.scale.data(), a.shift.data());
    return;
  }
  const bool streaming = writes_streaming(L.bytes<scalar_t>());
  at::parallel_for(0, L.C, channels_per_task(L), [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      Welford w;
      welford_add_runs(w, x + c * L.S, L.N, L.C * L.S, L.S);  // the channel's N runs of S values
      const ChannelAffine<scalar_t> a = store(c, w);
      for (int64_t n = 0; n < L.N; ++n) {
        const int64_t offset = (n * L.C + c) * L.S;
        if (streaming) {
          affine_run_streaming(act, x + offset, y + offset, L.S, a.scale, a.shift);
        } else {
          affine_run(act, x + offset, y + offset, L.S, a.scale, a.shift);
        }
      }
    }
#if defined(__AVX512F__)
    if (streaming) _mm_sfence();
#endif
  });
}

// sum(g) and sum(g * (x - mean)) over one channel's `runs` runs of n values, `stride` apart, where
// g = dy through the fused activation (`a` the channel's forward affine): each group summed in the
// input precision, the group sums added in double.
template <typename Act, typename scalar_t>
inline void grad_sums_runs(Act act, const scalar_t* dy, const scalar_t* x, int64_t runs, int64_t stride, int64_t n,
                           scalar_t mean, ChannelAffine<scalar_t> a, double& sum_dy, double& sum_dy_xmu) {
  for_each_statistics_group(runs, stride, n, [&](int64_t offset, int64_t rows, int64_t len) {
    const scalar_t* d = dy + offset;
    const scalar_t* v = x + offset;
    const auto g = [act, d, v, stride, a](int64_t r, int64_t i) {
      return through_activation(act, d[r * stride + i], v[r * stride + i], a.scale, a.shift);
    };
    sum_dy += pipelined_sum_runs<scalar_t>(rows, len, g);
    sum_dy_xmu += pipelined_sum_runs<scalar_t>(rows, len, [&g, v, stride, mean](int64_t r, int64_t i) {
      return g(r, i) * (v[r * stride + i] - mean);
    });
  });
}

// dx = k_dy * g + k_xmu * (x - mean) + k_const over one run of one channel (g as in grad_sums_runs).
template <typename Act, typename scalar_t>
inline void grad_input_run(Act act, const scalar_t* dy, const scalar_t* x, scalar_t* dx, int64_t n, scalar_t mean,
                           ChannelAffine<scalar_t> a, scalar_t k_dy, scalar_t k_xmu, scalar_t k_const) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    dx[i] = k_dy * through_activation(act, dy[i], x[i], a.scale, a.shift) + k_xmu * (x[i] - mean) + k_const;
  }
}

// grad_input_run with non-temporal stores where the build has them (stream_run).
template <typename Act, typename scalar_t>
inline void grad_input_run_streaming(Act act, const scalar_t* dy, const scalar_t* x, scalar_t* dx, int64_t n, scalar_t mean,
                                     ChannelAffine<scalar_t> a, scalar_t k_dy, scalar_t k_xmu, scalar_t k_const) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<scalar_t, float>) {
    const __m512 vk_dy = _mm512_set1_ps(k_dy), vk_xmu = _mm512_set1_ps(k_xmu), vk_const = _mm512_set1_ps(k_const),
                 vmean = _mm512_set1_ps(mean), vscale = _mm512_set1_ps(a.scale), vshift = _mm512_set1_ps(a.shift);
    stream_run(dx, n,
               [&](int64_t i) {
                 return k_dy * through_activation(act, dy[i], x[i], a.scale, a.shift) + k_xmu * (x[i] - mean) + k_const;
               },
               [&](int64_t i) {
                 const __m512 xi = _mm512_loadu_ps(x + i);
                 __m512 g = _mm512_loadu_ps(dy + i);
                 if constexpr (!Act::kIdentity) {  // at the forward's fused multiply-add (affine_run_streaming)
                   g = __m512(act.grad(Float16(g), Float16(_mm512_fmadd_ps(xi, vscale, vshift))));
                 }
                 const __m512 xmu = _mm512_sub_ps(xi, vmean);
                 return _mm512_fmadd_ps(vk_dy, g, _mm512_fmadd_ps(vk_xmu, xmu, vk_const));
               });
    return;
  }
#endif
  grad_input_run(act, dy, x, dx, n, mean, a, k_dy, k_xmu, k_const);
}

struct GradCoefficients {
  double k_dy, k_xmu, k_const;
};

// Training: dx = w*invstd * (dy - mean(dy) - (x-mean) * invstd^2 * mean(dy*(x-mean))).
// Eval: the statistics are constants, so dx = w*invstd * dy.
GradCoefficients grad_coefficients(double sum_dy, double sum_dy_xmu, double invstd, double w,
                                   int64_t count, bool train) {
  const double k = w * invstd;
  if (!train) return {k, 0.0, 0.0};
  const double inv_count = 1.0 / static_cast<double>(count);
  return {k, -k * sum_dy_xmu * inv_count * invstd * invstd, -k * sum_dy * inv_count};
}

// Per-channel sum(g) and sum(g * (x - mean)) of the rows layout, in double: per-thread partials, merged.
// g = dy through the fused activation (scale, shift: the forward's affine).
template <typename Act, typename scalar_t>
void grad_sums_rows(Act act, const scalar_t* dy, const scalar_t* x, const scalar_t* mean, const scalar_t* scale,
                    const scalar_t* shift, int64_t M, int64_t C, double* sum_dy_out, double* sum_dy_xmu_out) {
  std::vector<std::vector<double>> partial(at::get_num_threads(), std::vector<double>(2 * C, 0.0));
  at::parallel_for(0, M, rows_per_task(C), [&](int64_t begin, int64_t end) {
    const Act f = act;  // a local copy: GCC keeps a parameter read through the closure out of the vector loop
    double* sum_dy = partial[at::get_thread_num()].data();
    double* sum_dy_xmu = sum_dy + C;
    // With an activation, each row's g goes through a buffer first: GCC leaves the sum loop scalar
    // when ReLU's select is inside it (3x slower than the row of g plus the sums).
    std::vector<scalar_t> masked(Act::kIdentity ? 0 : C);
    for (int64_t r = begin; r < end; ++r) {
      const scalar_t* dyr = dy + r * C;
      const scalar_t* xr = x + r * C;
      if constexpr (!Act::kIdentity) {
        scalar_t* m = masked.data();
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) m[c] = f.grad(dyr[c], affine(xr[c], scale[c], shift[c]));
        dyr = m;
      }
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        sum_dy[c] += dyr[c];
        sum_dy_xmu[c] += static_cast<double>(dyr[c] * (xr[c] - mean[c]));
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    double sum_dy = 0, sum_dy_xmu = 0;
    for (const auto& p : partial) {
      sum_dy += p[c];
      sum_dy_xmu += p[C + c];
    }
    sum_dy_out[c] = sum_dy;
    sum_dy_xmu_out[c] = sum_dy_xmu;
  }
}

// Per-channel sum(dy) and sum(dy * (x - mean)) in double, for either layout.
template <typename scalar_t>
void grad_sums(const scalar_t* dy, const scalar_t* x, const scalar_t* mean, const ChannelLayout& L, double* sum_dy,
               double* sum_dy_xmu) {
  if (L.rows) {
    grad_sums_rows<activation::None<scalar_t>, scalar_t>({}, dy, x, mean, nullptr, nullptr, L.M(), L.C, sum_dy, sum_dy_xmu);
    return;
  }
  at::parallel_for(0, L.C, channels_per_task(L), [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      sum_dy[c] = sum_dy_xmu[c] = 0;
      grad_sums_runs(activation::None<scalar_t>{}, dy + c * L.S, x + c * L.S, L.N, L.C * L.S, L.S, mean[c], ChannelAffine<scalar_t>{},
                            sum_dy[c], sum_dy_xmu[c]);
    }
  });
}

// dx = k_dy[c] * dy + k_xmu[c] * (x - mean[c]) + k_const[c] over the whole tensor, for either layout
// (dy through the fused activation: scale, shift are the forward's affine).
template <typename Act, typename scalar_t>
void apply_grad_input(Act act, const scalar_t* dy, const scalar_t* x, const scalar_t* mean, const scalar_t* scale,
                      const scalar_t* shift, const scalar_t* k_dy, const scalar_t* k_xmu, const scalar_t* k_const,
                      const ChannelLayout& L, scalar_t* dx) {
  if (!L.rows) {
    const int64_t grain = std::max<int64_t>(1, kGrainElements / L.S);
    at::parallel_for(0, L.N * L.C, grain, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t c = plane % L.C, offset = plane * L.S;
        const ChannelAffine<scalar_t> a =
            Act::kIdentity ? ChannelAffine<scalar_t>{} : ChannelAffine<scalar_t>{scale[c], shift[c]};
        grad_input_run(act, dy + offset, x + offset, dx + offset, L.S, mean[c], a, k_dy[c], k_xmu[c], k_const[c]);
      }
    });
    return;
  }
  const int64_t C = L.C;
  at::parallel_for(0, L.M(), rows_per_task(C), [&](int64_t begin, int64_t end) {
    const Act f = act;  // a local copy, as in grad_sums_rows
    for (int64_t r = begin; r < end; ++r) {
      const scalar_t* dyr = dy + r * C;
      const scalar_t* xr = x + r * C;
      scalar_t* dxr = dx + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t g = through_activation(f, dyr[c], xr[c], Act::kIdentity ? 0 : scale[c],
                                              Act::kIdentity ? 0 : shift[c]);
        dxr[c] = k_dy[c] * g + k_xmu[c] * (xr[c] - mean[c]) + k_const[c];
      }
    }
  });
}

// The gradient coefficients of every channel, from sums over `count` values per channel.
template <typename scalar_t>
struct CoefficientArrays {
  std::vector<scalar_t> k_dy, k_xmu, k_const;
};

template <typename scalar_t>
CoefficientArrays<scalar_t> grad_coefficient_arrays(const double* sum_dy, const double* sum_dy_xmu,
                                                              const scalar_t* invstd, const scalar_t* weight,
                                                              int64_t C, int64_t count, bool train) {
  CoefficientArrays<scalar_t> k{std::vector<scalar_t>(C), std::vector<scalar_t>(C), std::vector<scalar_t>(C)};
  for (int64_t c = 0; c < C; ++c) {
    const GradCoefficients g = grad_coefficients(sum_dy[c], sum_dy_xmu[c], invstd[c],
                                                 weight ? static_cast<double>(weight[c]) : 1.0, count, train);
    k.k_dy[c] = static_cast<scalar_t>(g.k_dy);
    k.k_xmu[c] = static_cast<scalar_t>(g.k_xmu);
    k.k_const[c] = static_cast<scalar_t>(g.k_const);
  }
  return k;
}

// With a fused activation (training only), dy is the gradient of the activation's output, taken through
// its derivative at the forward's pre-activation (recomputed from the same statistics, weight and bias:
// channel_affine).
template <typename Act, typename scalar_t>
void backward(Act act, const scalar_t* dy, const scalar_t* x, const scalar_t* weight, const scalar_t* bias,
              const scalar_t* mean, const scalar_t* invstd, const ChannelLayout& L, bool train,
              scalar_t* dx, scalar_t* dweight, scalar_t* dbias) {
  const auto affine_of = [&](int64_t c) {
    return Act::kIdentity ? ChannelAffine<scalar_t>{} : channel_affine(mean[c], invstd[c], weight, bias, c);
  };
  // The parameter gradients of channel c from its sums.
  const auto store_parameter_grads = [&](int64_t c, double sum_dy, double sum_dy_xmu) {
    dweight[c] = static_cast<scalar_t>(sum_dy_xmu * static_cast<double>(invstd[c]));
    dbias[c] = static_cast<scalar_t>(sum_dy);
  };
  if (!L.rows) {
    // Planar: a channel's sums and its dx back to back, while the channel is still in cache.
    const bool streaming = writes_streaming(L.bytes<scalar_t>());
    at::parallel_for(0, L.C, channels_per_task(L), [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        double sum_dy = 0, sum_dy_xmu = 0;
        const ChannelAffine<scalar_t> a = affine_of(c);
        grad_sums_runs(act, dy + c * L.S, x + c * L.S, L.N, L.C * L.S, L.S, mean[c], a, sum_dy, sum_dy_xmu);
        store_parameter_grads(c, sum_dy, sum_dy_xmu);
        const GradCoefficients k = grad_coefficients(sum_dy, sum_dy_xmu, invstd[c],
                                                     weight ? static_cast<double>(weight[c]) : 1.0, L.count(), train);
        const auto k_dy = static_cast<scalar_t>(k.k_dy), k_xmu = static_cast<scalar_t>(k.k_xmu),
                   k_const = static_cast<scalar_t>(k.k_const);
        for (int64_t n = 0; n < L.N; ++n) {
          const int64_t offset = (n * L.C + c) * L.S;
          if (streaming) {
            grad_input_run_streaming(act, dy + offset, x + offset, dx + offset, L.S, mean[c], a, k_dy, k_xmu,
                                            k_const);
          } else {
            grad_input_run(act, dy + offset, x + offset, dx + offset, L.S, mean[c], a, k_dy, k_xmu, k_const);
          }
        }
      }
#if defined(__AVX512F__)
      if (streaming) _mm_sfence();
#endif
    });
    return;
  }
  const auto a = Act::kIdentity ? AffineArrays<scalar_t>{} : affine_arrays<scalar_t>(L.C, affine_of);  // activation only
  std::vector<double> sum_dy(L.C), sum_dy_xmu(L.C);
  grad_sums_rows(act, dy, x, mean, a.scale.data(), a.shift.data(), L.M(), L.C, sum_dy.data(), sum_dy_xmu.data());
  for (int64_t c = 0; c < L.C; ++c) store_parameter_grads(c, sum_dy[c], sum_dy_xmu[c]);
  const auto k = grad_coefficient_arrays(sum_dy.data(), sum_dy_xmu.data(), invstd, weight, L.C, L.count(), train);
  apply_grad_input(act, dy, x, mean, a.scale.data(), a.shift.data(), k.k_dy.data(), k.k_xmu.data(),
                          k.k_const.data(), L, dx);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_train(
    const at::Tensor& x, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& running_mean, const std::optional<at::Tensor>& running_var, double momentum,
    double eps, c10::string_view activation, double alpha) {
  check_device(x);
  checks::check_bn_train(x, weight, bias, running_mean, running_var, eps);
  const activation::Activation fused = checks::bn_activation(activation, alpha);
  if (x.numel() == 0) return empty_batch::batch_norm_train(x);
  const ChannelLayout L = describe(x);
  const at::Tensor w = checks::contiguous_if_given(weight);
  const at::Tensor b = checks::contiguous_if_given(bias);
  at::Tensor y = empty_output_like(x);
  at::Tensor mean = at::empty({L.C}, x.options());
  at::Tensor invstd = at::empty({L.C}, x.options());
  at::Tensor var = at::empty({L.C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_train", [&] {
    activation::dispatch<scalar_t>(fused, [&](auto act) {
      train_forward(
          act, x.const_data_ptr<scalar_t>(), data_or_null<scalar_t>(w), data_or_null<scalar_t>(b), L, eps,
          y.mutable_data_ptr<scalar_t>(), mean.mutable_data_ptr<scalar_t>(), invstd.mutable_data_ptr<scalar_t>(),
          var.mutable_data_ptr<scalar_t>());
    });
  });
  update_running_stats(running_mean, running_var, mean, var, momentum);
  return {y, mean, invstd, var};
}

// Eval's per-channel affine: scale = weight / sqrt(var + eps), shift = bias - mean * scale, computed
// in double. The absent-weight/bias choice is made outside the loop so each loop vectorises.
template <typename scalar_t>
void eval_scale_shift(const scalar_t* mean, const scalar_t* var, const scalar_t* weight, const scalar_t* bias,
                      int64_t C, double eps, scalar_t* scale, scalar_t* shift) {
  const auto fill = [&](auto weight_of, auto bias_of) {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const double s = weight_of(c) / std::sqrt(static_cast<double>(var[c]) + eps);
      scale[c] = static_cast<scalar_t>(s);
      shift[c] = static_cast<scalar_t>(bias_of(c) - static_cast<double>(mean[c]) * s);
    }
  };
  const auto one = [](int64_t) { return 1.0; };
  const auto zero = [](int64_t) { return 0.0; };
  const auto weight_at = [weight](int64_t c) { return static_cast<double>(weight[c]); };
  const auto bias_at = [bias](int64_t c) { return static_cast<double>(bias[c]); };
  if (weight && bias) {
    fill(weight_at, bias_at);
  } else if (weight) {
    fill(weight_at, zero);
  } else if (bias) {
    fill(one, bias_at);
  } else {
    fill(one, zero);
  }
}

at::Tensor batch_norm_eval(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const at::Tensor& running_mean,
                           const at::Tensor& running_var, double eps, c10::string_view activation, double alpha) {
  check_device(x);
  checks::check_bn_eval(x, weight, bias, running_mean, running_var, eps);
  const activation::Activation fused = checks::bn_activation(activation, alpha);
  if (x.numel() == 0) return at::empty_like(x);
  const ChannelLayout L = describe(x);
  const at::Tensor w = checks::contiguous_if_given(weight);
  const at::Tensor b = checks::contiguous_if_given(bias);
  at::Tensor y = empty_output_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_eval", [&] {
    const at::Tensor rm = running_mean.contiguous(), rv = running_var.contiguous();
    const scalar_t* mean = rm.const_data_ptr<scalar_t>();
    const scalar_t* var = rv.const_data_ptr<scalar_t>();
    std::vector<scalar_t> scale(L.C), shift(L.C);
    eval_scale_shift(mean, var, data_or_null<scalar_t>(w), data_or_null<scalar_t>(b), L.C, eps, scale.data(),
                     shift.data());
    activation::dispatch<scalar_t>(fused, [&](auto act) {
      apply_channel_affine(act, x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), L, scale.data(),
                           shift.data());
    });
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const at::Tensor& mean, const at::Tensor& invstd, bool train, const std::optional<at::Tensor>& bias,
    c10::string_view activation, double alpha) {
  check_device(x);
  checks::check_bn_backward(grad_y, x, weight, mean, invstd);
  const activation::Activation fused = checks::check_bn_backward_activation(x, bias, train, activation, alpha);
  if (x.numel() == 0) return empty_batch::batch_norm_backward(x);
  const ChannelLayout L = describe(x);
  const at::Tensor w = checks::contiguous_if_given(weight);
  const at::Tensor b = checks::contiguous_if_given(bias);
  const at::Tensor dy = in_layout_of(grad_y, x);
  at::Tensor dx = empty_output_like(x);
  at::Tensor dweight = at::empty({L.C}, x.options());
  at::Tensor dbias = at::empty({L.C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_backward", [&] {
    const at::Tensor m = mean.contiguous(), s = invstd.contiguous();
    activation::dispatch<scalar_t>(fused, [&](auto act) {
      backward(
          act, dy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), data_or_null<scalar_t>(w),
          data_or_null<scalar_t>(b), m.const_data_ptr<scalar_t>(), s.const_data_ptr<scalar_t>(), L, train,
          dx.mutable_data_ptr<scalar_t>(), dweight.mutable_data_ptr<scalar_t>(), dbias.mutable_data_ptr<scalar_t>());
    });
  });
  return {dx, dweight, dbias};
}

std::tuple<at::Tensor, at::Tensor> batch_norm_stats(const at::Tensor& x) {
  check_device(x);
  checks::check_bn_stats(x);
  if (x.numel() == 0) return empty_batch::batch_norm_stats(x);
  const ChannelLayout L = describe(x);
  at::Tensor mean = at::empty({L.C}, x.options());
  at::Tensor m2 = at::empty({L.C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_stats", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* mp = mean.mutable_data_ptr<scalar_t>();
    scalar_t* m2p = m2.mutable_data_ptr<scalar_t>();
    const auto store = [&](int64_t c, const Welford& w) {
      mp[c] = static_cast<scalar_t>(w.mean);
      m2p[c] = static_cast<scalar_t>(w.m2);
    };
    if (L.rows) {
      const std::vector<Welford> stats = row_statistics(xp, L.M(), L.C);
      for (int64_t c = 0; c < L.C; ++c) store(c, stats[c]);
      return;
    }
    at::parallel_for(0, L.C, channels_per_task(L), [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        Welford w;
        welford_add_runs(w, xp + c * L.S, L.N, L.C * L.S, L.S);
        store(c, w);
      }
    });
  });
  return {mean, m2};
}

std::tuple<at::Tensor, at::Tensor> batch_norm_backward_reduce(const at::Tensor& grad_y, const at::Tensor& x,
                                                              const at::Tensor& mean) {
  check_device(x);
  checks::check_bn_backward_reduce(grad_y, x, mean);
  if (x.numel() == 0) return empty_batch::batch_norm_stats(x);  // zero sums
  const ChannelLayout L = describe(x);
  const at::Tensor dy = in_layout_of(grad_y, x);
  std::vector<double> sum_dy(L.C), sum_dy_xmu(L.C);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_backward_reduce", [&] {
    const at::Tensor m = mean.contiguous();
    grad_sums(dy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), m.const_data_ptr<scalar_t>(), L,
              sum_dy.data(), sum_dy_xmu.data());
  });
  const auto to_tensor = [&](const std::vector<double>& v) {
    return at::tensor(v, x.options().dtype(at::kDouble)).to(x.scalar_type());
  };
  return {to_tensor(sum_dy), to_tensor(sum_dy_xmu)};
}

at::Tensor batch_norm_backward_elemt(const at::Tensor& grad_y, const at::Tensor& x,
                                     const std::optional<at::Tensor>& weight, const at::Tensor& mean,
                                     const at::Tensor& invstd, const at::Tensor& sum_dy, const at::Tensor& sum_dy_xmu,
                                     int64_t count) {
  check_device(x);
  checks::check_bn_backward_elemt(grad_y, x, weight, mean, invstd, sum_dy, sum_dy_xmu, count);
  if (x.numel() == 0) return at::empty_like(x);
  const ChannelLayout L = describe(x);
  const at::Tensor w = checks::contiguous_if_given(weight);
  const at::Tensor dy = in_layout_of(grad_y, x);
  at::Tensor dx = empty_output_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_batch_norm_backward_elemt", [&] {
    const at::Tensor m = mean.contiguous(), s = invstd.contiguous();
    const at::Tensor sums = at::stack({sum_dy, sum_dy_xmu}).to(at::kDouble).contiguous();
    const double* sd = sums.const_data_ptr<double>();
    const auto k = grad_coefficient_arrays(sd, sd + L.C, s.const_data_ptr<scalar_t>(), data_or_null<scalar_t>(w),
                                           L.C, count, true);
    apply_grad_input<activation::None<scalar_t>, scalar_t>(
        {}, dy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), m.const_data_ptr<scalar_t>(), nullptr, nullptr,
        k.k_dy.data(), k.k_xmu.data(), k.k_const.data(), L, dx.mutable_data_ptr<scalar_t>());
  });
  return dx;
}

}  // namespace
}  // namespace zoo::cpu

TORCH_LIBRARY_IMPL(zoo, CPU, m) {
  m.impl("batch_norm_train", &zoo::cpu::batch_norm_train);
  m.impl("batch_norm_eval", &zoo::cpu::batch_norm_eval);
  m.impl("batch_norm_backward", &zoo::cpu::batch_norm_backward);
  m.impl("batch_norm_stats", &zoo::cpu::batch_norm_stats);
  m.impl("batch_norm_backward_reduce", &zoo::cpu::batch_norm_backward_reduce);
  m.impl("batch_norm_backward_elemt", &zoo::cpu::batch_norm_backward_elemt);
}
