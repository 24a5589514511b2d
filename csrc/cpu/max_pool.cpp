// CPU max pooling (NCHW), forward with or without indices, and backward.
//
// One task per run of planes (image, channel). Within a plane, per output row,
// the window taps are visited in torch's order (row by row, left to right) for
// many outputs at once (16 in AVX-512 registers for float32 and column stride 1
// or 2; a vectorised sweep of the row per tap otherwise), with torch's rule: a
// later tap wins only when it is strictly greater or NaN. So the values and
// indices are torch's, ties and NaNs included. torch's own CPU kernel walks each
// window per output, scalar.
#include "checks.h"
#include "cpu/memory.h"
#include "cpu/prefetch.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace zoo::cpu {
namespace {

void check_device(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.device().is_cpu(), "zoo max_pool2d (CPU kernel): x is on ", x.device());
}

// Window column j of output column ow is input column ow * sw + offset, inside the input for ow in [first, end).
struct TapColumns {
  int64_t offset, first, end;
};

std::vector<TapColumns> tap_columns(const Pool2dGeometry& g) {
  std::vector<TapColumns> taps;
  for (int64_t j = 0; j < g.kw; ++j) {
    const int64_t offset = j * g.dw - g.pw;
    const int64_t end = offset > g.W - 1 ? 0 : std::min(g.Wo, (g.W - 1 - offset) / g.sw + 1);
    const int64_t first = offset >= 0 ? 0 : (-offset + g.sw - 1) / g.sw;
    taps.push_back({offset, std::min(first, end), end});
  }
  return taps;
}

// Each output column's first window column inside the input: with the first row, torch's index before any tap is read.
std::vector<int64_t> first_columns(const Pool2dGeometry& g) {
  std::vector<int64_t> columns(g.Wo);
  for (int64_t ow = 0; ow < g.Wo; ++ow) columns[ow] = g.cols(ow).first;
  return columns;
}

#if defined(__AVX512F__)
// pool_row for float32, column stride 1 or 2 and int32-sized planes: 16 outputs at a time, held in registers
// over every tap of their windows (masked where a tap lies outside the input), written once to y and the
// int64 indices. Rows are short (7-32 outputs): the compiler's vector loop of the generic row left them to
// its scalar remainder, and sweeping the row once per tap re-read and re-wrote the running maxima per tap.
// first_column: first_columns(g) as int32, for a vector load (16 scalar stores read back as one vector
// stalled on store forwarding: a fifth of the kernel's time in a training step).
template <bool kIndices, int kStride>
void pool_row_avx512(const float* x, float* y, int64_t* indices, int64_t oh, const Pool2dGeometry& g,
                     const std::vector<TapColumns>& taps, const int32_t* first_column) {
  static_assert(kStride == 1 || kStride == 2);
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const Pool2dGeometry::Range rows = g.rows(oh);
  const int64_t first_row = rows.first, row_end = rows.end;
  for (int64_t ow0 = 0; ow0 < g.Wo; ow0 += 16) {
    const int64_t count = std::min<int64_t>(16, g.Wo - ow0);
    const __mmask16 all = static_cast<__mmask16>((1u << count) - 1);
    __m512 best = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __m512i arg = _mm512_setzero_si512();
    if constexpr (kIndices)
      arg = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(first_row * g.W)),
                             _mm512_maskz_loadu_epi32(all, first_column + ow0));
    for (int64_t r = first_row; r < row_end; r += g.dh) {
      for (const TapColumns& tap : taps) {
        const int64_t lo = std::max(tap.first, ow0) - ow0, hi = std::min(tap.end, ow0 + count) - ow0;
        if (lo >= hi) continue;
        const __mmask16 mask = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
        const float* in = x + r * g.W + tap.offset + ow0 * kStride;  // lane i reads in[i * kStride]
        __m512 v;
        if constexpr (kStride == 1) {
          v = _mm512_maskz_loadu_ps(mask, in);
        } else {  // the even positions 2 lo .. 2 (hi - 1) of 32 consecutive values
          const uint32_t wanted = static_cast<uint32_t>(((uint64_t(1) << (2 * hi - 1)) - 1) & ~((uint64_t(1) << (2 * lo)) - 1));
          const __m512 low = _mm512_maskz_loadu_ps(static_cast<__mmask16>(wanted), in);
          const __m512 high = _mm512_maskz_loadu_ps(static_cast<__mmask16>(wanted >> 16), in + 16);
          v = _mm512_permutex2var_ps(low, evens, high);
        }
        const __mmask16 wins = mask & (_mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
        best = _mm512_mask_mov_ps(best, wins, v);
        if constexpr (kIndices) {
          const int32_t base = static_cast<int32_t>(r * g.W + tap.offset + ow0 * kStride);
          const __m512i index = _mm512_add_epi32(_mm512_set1_epi32(base), _mm512_mullo_epi32(lanes, _mm512_set1_epi32(kStride)));
          arg = _mm512_mask_mov_epi32(arg, wins, index);
        }
      }
    }
    _mm512_mask_storeu_ps(y + ow0, all, best);
    if constexpr (kIndices) {
      _mm512_mask_storeu_epi64(indices + ow0, static_cast<__mmask8>(all), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(arg)));
      _mm512_mask_storeu_epi64(indices + ow0 + 8, static_cast<__mmask8>(all >> 8),
                               _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(arg, 1)));
    }
  }
}
#endif

// Output row oh of one plane into best / arg (arg: the argmax's index within the plane, when kIndices). Local
// restrict-qualified rows and branch-free selects let the tap loops vectorise (a loop on y and indices did not:
// scalar code with unpredictable branches). kStride is the column stride when it is 1 or 2 (a constant the
// compiler turns into vector loads and permutes), else 0 and g.sw is used.
template <typename scalar_t, typename Index, bool kIndices, int kStride>
void pool_row(const scalar_t* __restrict x, scalar_t* __restrict best, Index* __restrict arg, int64_t oh,
              const Pool2dGeometry& g, const std::vector<TapColumns>& taps, const std::vector<int64_t>& first_column) {
  const int64_t sw = kStride ? kStride : g.sw;
  const Pool2dGeometry::Range rows = g.rows(oh);
  const int64_t first_row = rows.first, row_end = rows.end;
  for (int64_t ow = 0; ow < g.Wo; ++ow) {
    best[ow] = -std::numeric_limits<scalar_t>::infinity();
    if constexpr (kIndices) arg[ow] = static_cast<Index>(first_row * g.W + first_column[ow]);
  }
  for (int64_t r = first_row; r < row_end; r += g.dh) {
    const scalar_t* __restrict row = x + r * g.W;
    for (const TapColumns& tap : taps) {
      const scalar_t* __restrict in = row + tap.offset;
      const Index base = static_cast<Index>(r * g.W + tap.offset);
      const Index step = static_cast<Index>(sw);
#pragma omp simd
      for (int64_t ow = tap.first; ow < tap.end; ++ow) {
        const scalar_t v = in[ow * sw];
        const bool wins = v > best[ow] || v != v;
        best[ow] = wins ? v : best[ow];
        if constexpr (kIndices) arg[ow] = wins ? base + static_cast<Index>(ow) * step : arg[ow];
      }
    }
  }
}

// Index is the type of the indices while a row is pooled: int32_t where every index computed fits (16 lanes of a
// 512-bit vector, like the float32 values), else int64_t.
template <typename scalar_t, typename Index, bool kIndices>
void pool_planes(const at::Tensor& x, at::Tensor& y, int64_t* indices, const Pool2dGeometry& g) {
  const std::vector<TapColumns> taps = tap_columns(g);
  const std::vector<int64_t> first_column = first_columns(g);
  const int64_t planes = x.size(0) * x.size(1), plane_in = g.H * g.W, plane_out = g.Ho * g.Wo;
  const scalar_t* xp = x.const_data_ptr<scalar_t>();
  scalar_t* yp = y.mutable_data_ptr<scalar_t>();
  // Tasks of at least ~16K input values: a thread hand-off costs more than a small plane's work.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / plane_in);
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<scalar_t, float> && std::is_same_v<Index, int32_t>) {
    if (g.sw <= 2) {
      const auto fast_row = g.sw == 1 ? pool_row_avx512<kIndices, 1> : pool_row_avx512<kIndices, 2>;
      const std::vector<int32_t> first_column32(first_column.begin(), first_column.end());
      at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) {
          // The next plane's input, while this one is pooled (NIN's 3x3 pool in a training step: 6.8-7.0 ->
          // 3.3-3.5 ms). The generic rows (compute-bound) and the backward (2.1 -> 2.3 ms with it) do without.
          if (p + 1 < end) prefetch_values(xp + (p + 1) * plane_in, plane_in);
          for (int64_t oh = 0; oh < g.Ho; ++oh)
            fast_row(xp + p * plane_in, yp + p * plane_out + oh * g.Wo,
                     kIndices ? indices + p * plane_out + oh * g.Wo : nullptr, oh, g, taps, first_column32.data());
        }
      });
      return;
    }
  }
#endif
  const auto row = g.sw == 1   ? pool_row<scalar_t, Index, kIndices, 1>
                   : g.sw == 2 ? pool_row<scalar_t, Index, kIndices, 2>
                               : pool_row<scalar_t, Index, kIndices, 0>;
  at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> best(g.Wo);
    std::vector<Index> arg(kIndices ? g.Wo : 0);
    for (int64_t p = begin; p < end; ++p)
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        row(xp + p * plane_in, best.data(), arg.data(), oh, g, taps, first_column);
        std::copy(best.begin(), best.end(), yp + p * plane_out + oh * g.Wo);
        if constexpr (kIndices) std::copy(arg.begin(), arg.end(), indices + p * plane_out + oh * g.Wo);
      }
  });
}

std::tuple<at::Tensor, at::Tensor> pool(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                        at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                                        bool with_indices) {
  const Pool2dGeometry g = checks::check_max_pool2d_geometry(input, kernel_size, stride, padding, dilation, ceil_mode);
  check_device(input);
  const at::Tensor x = input.contiguous();
  const std::vector<int64_t> sizes = {x.size(0), x.size(1), g.Ho, g.Wo};
  if (x.numel() == 0)  // an empty batch, as torch allows
    return {at::empty(sizes, x.options()), with_indices ? at::empty(sizes, x.options().dtype(at::kLong)) : at::Tensor()};
  at::Tensor y = empty_output(sizes, x.options());
  at::Tensor indices = with_indices ? empty_output(sizes, x.options().dtype(at::kLong)) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_max_pool2d_cpu", [&] {
    // The largest index computed: a window's first row may lie up to dh - 1 rows below the input.
    const bool small = (g.H + g.dh) * (g.W + g.dw) < (int64_t(1) << 31);
    if (!with_indices)
      pool_planes<scalar_t, int32_t, false>(x, y, nullptr, g);
    else if (small)
      pool_planes<scalar_t, int32_t, true>(x, y, indices.mutable_data_ptr<int64_t>(), g);
    else
      pool_planes<scalar_t, int64_t, true>(x, y, indices.mutable_data_ptr<int64_t>(), g);
  });
  return {y, indices};
}

at::Tensor max_pool2d(const at::Tensor& x, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  return std::get<0>(pool(x, kernel_size, stride, padding, dilation, ceil_mode, false));
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices(const at::Tensor& x, at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride, at::IntArrayRef padding,
                                                           at::IntArrayRef dilation, bool ceil_mode) {
  return pool(x, kernel_size, stride, padding, dilation, ceil_mode, true);
}

// dx: each output's gradient added at its index, per plane (overlapping windows may share an input; a plane is
// one task, so the sums need no atomics and come in torch's order). An index outside its plane (torch gives one
// for a window that holds no input value, an edge of ceil mode with dilation) is skipped.
at::Tensor max_pool2d_backward(const at::Tensor& grad_y_in, const at::Tensor& input, const at::Tensor& indices_in,
                               at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                               at::IntArrayRef dilation, bool ceil_mode) {
  const Pool2dGeometry g = checks::check_max_pool2d_backward(grad_y_in, input, indices_in, kernel_size, stride,
                                                             padding, dilation, ceil_mode);
  check_device(input);
  const at::Tensor grad_y = grad_y_in.contiguous(), indices = indices_in.contiguous();
  if (input.numel() == 0) return at::empty(input.sizes(), input.options());
  at::Tensor dx = empty_output(input.sizes(), input.options());
  const int64_t planes = input.size(0) * input.size(1), plane_in = g.H * g.W, plane_out = g.Ho * g.Wo;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / plane_in);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "zoo_max_pool2d_backward_cpu", [&] {
    const scalar_t* gy = grad_y.const_data_ptr<scalar_t>();
    const int64_t* index = indices.const_data_ptr<int64_t>();
    scalar_t* gx = dx.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        scalar_t* plane = gx + p * plane_in;
        std::fill(plane, plane + plane_in, scalar_t(0));
        const scalar_t* g_out = gy + p * plane_out;
        const int64_t* i_out = index + p * plane_out;
        for (int64_t o = 0; o < plane_out; ++o) {
          const int64_t i = i_out[o];
          if (i >= 0 && i < plane_in) plane[i] += g_out[o];
        }
      }
    });
  });
  return dx;
}

}  // namespace
}  // namespace zoo::cpu

TORCH_LIBRARY_IMPL(zoo, CPU, m) {
  m.impl("max_pool2d", &zoo::cpu::max_pool2d);
  m.impl("max_pool2d_with_indices", &zoo::cpu::max_pool2d_with_indices);
  m.impl("max_pool2d_backward", &zoo::cpu::max_pool2d_backward);
}
