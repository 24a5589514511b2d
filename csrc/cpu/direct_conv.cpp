// Direct float32 convolution for few input channels (see direct_conv.h).
#include "cpu/direct_conv.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace zoo::cpu::direct {
namespace {

// NIN's first layers (3->192, 3->384 k5) gain too: forward 13.6 -> 11.7 ms and forward + weight gradient
// faster than im2col's (which made products of K = 75 rows), so the bound on outputs is the widest layer measured.
constexpr int64_t kMaxInputChannels = 8, kMaxOutputChannels = 384;

#if defined(__AVX512F__)

constexpr int kGroup = 16;  // output channels per register block (16 zmm accumulators)

// The zero-padded input planes of one image: C planes of Hp x Wp.
struct Padded {
  int64_t Hp, Wp;
  std::vector<float> data;

  Padded(const Conv2dGeometry& g) : Hp(g.H + 2 * g.ph), Wp(g.W + 2 * g.pw), data(g.C * Hp * Wp, 0.0f) {}

  void load(const float* image, const Conv2dGeometry& g) {
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t r = 0; r < g.H; ++r)
        std::copy_n(image + (c * g.H + r) * g.W, g.W, data.data() + (c * Hp + r + g.ph) * Wp + g.pw);
  }
};

// y[o] (o < G output channels, planes Ho x Wo apart) for one image from its padded
// input; w holds the G output channels' kernels (G, C, kh, kw), bias G values or null.
template <int G>
void block(const Padded& in, const float* w, const float* bias, const Conv2dGeometry& g, float* y) {
  const int64_t taps = g.C * g.kh * g.kw, plane = g.Ho * g.Wo;
  for (int64_t oh = 0; oh < g.Ho; ++oh) {
    for (int64_t ow = 0; ow < g.Wo; ow += 16) {
      const int64_t valid = std::min<int64_t>(16, g.Wo - ow);
      const __mmask16 mask = __mmask16((1u << valid) - 1);
      __m512 acc[G];
      for (int o = 0; o < G; ++o) acc[o] = _mm512_set1_ps(bias ? bias[o] : 0.0f);
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t i = 0; i < g.kh; ++i) {
          const float* row = in.data.data() + (c * in.Hp + oh + i) * in.Wp + ow;
          const float* k = w + (c * g.kh + i) * g.kw;
          for (int64_t j = 0; j < g.kw; ++j) {
            const __m512 pixels = _mm512_maskz_loadu_ps(mask, row + j);
            for (int o = 0; o < G; ++o) acc[o] = _mm512_fmadd_ps(_mm512_set1_ps(k[o * taps + j]), pixels, acc[o]);
          }
        }
      for (int o = 0; o < G; ++o) _mm512_mask_storeu_ps(y + o * plane + oh * g.Wo + ow, mask, acc[o]);
    }
  }
}

using Block = void (*)(const Padded&, const float*, const float*, const Conv2dGeometry&, float*);

// block<G> for G = 1 .. kGroup, indexed by G - 1.
template <int... i>
constexpr std::array<Block, sizeof...(i)> blocks(std::integer_sequence<int, i...>) {
  return {&block<i + 1>...};
}
constexpr auto kBlocks = blocks(std::make_integer_sequence<int, kGroup>{});

// Weight-gradient register block: kOutBlock output channels x kTapBlock taps of
// 16-lane partial sums (24 zmm), with the 4 dy vectors and one input vector.
constexpr int kOutBlock = 4, kTapBlock = 6;

// acc[o * taps + t] += dy[o] * (input at tap t) over every output pixel of one image, 16
// lanes at a time (the lanes are summed at the end). dy: the image's first block channel,
// planes Ho x Wo apart; tap_offset[t]: where tap t's shifted plane starts in `in`.
template <int O, int T>
void weight_grad_block(const Padded& in, const float* dy, const int64_t* tap_offset, const Conv2dGeometry& g,
                       __m512* acc, int64_t taps) {
  const int64_t plane = g.Ho * g.Wo;
  int64_t offset[T];
  for (int t = 0; t < T; ++t) offset[t] = tap_offset[t];
  // Fully unrolled, so the 24 sums stay in registers (a loop over them spilled each to the stack).
  __m512 a[O][T];
#pragma GCC unroll 4
  for (int o = 0; o < O; ++o)
#pragma GCC unroll 6
    for (int t = 0; t < T; ++t) a[o][t] = acc[o * taps + t];
  for (int64_t oh = 0; oh < g.Ho; ++oh) {
    const float* row = in.data.data() + oh * in.Wp;
    const float* dy_row = dy + oh * g.Wo;
    for (int64_t ow = 0; ow < g.Wo; ow += 16) {
      const int64_t valid = std::min<int64_t>(16, g.Wo - ow);
      const __mmask16 mask = __mmask16((1u << valid) - 1);
      __m512 d[O];
#pragma GCC unroll 4
      for (int o = 0; o < O; ++o) d[o] = _mm512_maskz_loadu_ps(mask, dy_row + o * plane + ow);
#pragma GCC unroll 6
      for (int t = 0; t < T; ++t) {
        const __m512 pixels = _mm512_maskz_loadu_ps(mask, row + offset[t] + ow);
#pragma GCC unroll 4
        for (int o = 0; o < O; ++o) a[o][t] = _mm512_fmadd_ps(d[o], pixels, a[o][t]);
      }
    }
  }
#pragma GCC unroll 4
  for (int o = 0; o < O; ++o)
#pragma GCC unroll 6
    for (int t = 0; t < T; ++t) acc[o * taps + t] = a[o][t];
}

using WeightGradBlock = void (*)(const Padded&, const float*, const int64_t*, const Conv2dGeometry&, __m512*,
                                 int64_t);

// weight_grad_block<O, T> for O = 1 .. kOutBlock, T = 1 .. kTapBlock, indexed by (O - 1) * kTapBlock + T - 1.
template <int... i>
constexpr std::array<WeightGradBlock, sizeof...(i)> weight_grad_blocks(std::integer_sequence<int, i...>) {
  return {&weight_grad_block<i / kTapBlock + 1, i % kTapBlock + 1>...};
}
constexpr auto kWeightGradBlocks = weight_grad_blocks(std::make_integer_sequence<int, kOutBlock * kTapBlock>{});

#endif  // __AVX512F__

}  // namespace

// The input gradient as a forward: dy (Cout channels, Ho x Wo) convolved with the turned,
// transposed kernels, padded by kernel - 1 - padding, gives dx (C channels, H x W). Derived
// from a checked geometry, so its sizes are within the checked ones.
Conv2dGeometry input_grad_geometry(const Conv2dGeometry& g) {
  return {g.Cout, g.Ho, g.Wo, g.C, g.kh, g.kw, 1, 1, g.kh - 1 - g.ph, g.kw - 1 - g.pw, 1, 1, g.H, g.W};
}

bool applies(const Conv2dGeometry& g, at::ScalarType dtype) {
#if defined(__AVX512F__)
  return dtype == at::kFloat && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.C <= kMaxInputChannels &&
         g.Cout <= kMaxOutputChannels;
#else
  return false;
#endif
}

void forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const Conv2dGeometry& g,
             at::Tensor& y) {
#if defined(__AVX512F__)
  const int64_t N = x.size(0), image = g.C * g.H * g.W, taps = g.C * g.kh * g.kw;
  const float* xp = x.const_data_ptr<float>();
  const float* wp = weight.const_data_ptr<float>();
  const float* bp = bias.defined() ? bias.const_data_ptr<float>() : nullptr;
  float* yp = y.mutable_data_ptr<float>();
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    Padded in(g);
    for (int64_t n = begin; n < end; ++n) {
      in.load(xp + n * image, g);
      for (int64_t o = 0; o < g.Cout; o += kGroup) {
        const int64_t group = std::min<int64_t>(kGroup, g.Cout - o);
        kBlocks[group - 1](in, wp + o * taps, bp ? bp + o : nullptr, g, yp + (n * g.Cout + o) * g.P());
      }
    }
  });
#else
  TORCH_INTERNAL_ASSERT(false, "zoo conv2d: the direct kernel needs AVX-512");
#endif
}

bool applies_to_input_grad(const Conv2dGeometry& g, at::ScalarType dtype) {
  constexpr int64_t kMaxGradChannels = 16;  // dy's channels, the turned-around layer's input
  return applies(g, dtype) && g.Cout <= kMaxGradChannels && g.ph <= g.kh - 1 && g.pw <= g.kw - 1;
}

void backward_input(const at::Tensor& dy, const at::Tensor& weight, const Conv2dGeometry& g, at::Tensor& dx) {
  // Kernel (c, o) of the turned-around layer is weight[o][c] turned by 180 degrees.
  const at::Tensor turned = weight.flip({2, 3}).transpose(0, 1).contiguous();
  forward(dy, turned, at::Tensor(), input_grad_geometry(g), dx);
}

at::Tensor backward_weight(const at::Tensor& x, const at::Tensor& dy, const Conv2dGeometry& g) {
#if defined(__AVX512F__)
  const int64_t N = x.size(0), image = g.C * g.H * g.W, taps = g.C * g.kh * g.kw, Cout = g.Cout;
  const float* xp = x.const_data_ptr<float>();
  const float* dyp = dy.const_data_ptr<float>();
  // Each thread sums its images into its own (Cout, taps) array of 16-lane vectors.
  const int64_t threads = at::get_num_threads();
  std::vector<__m512> partial(threads * Cout * taps, _mm512_setzero_ps());
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    Padded in(g);
    std::vector<int64_t> tap_offset(taps);
    for (int64_t c = 0, t = 0; c < g.C; ++c)
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j, ++t) tap_offset[t] = (c * in.Hp + i) * in.Wp + j;
    __m512* acc = partial.data() + at::get_thread_num() * Cout * taps;
    for (int64_t n = begin; n < end; ++n) {
      in.load(xp + n * image, g);
      for (int64_t o = 0; o < Cout; o += kOutBlock) {
        const int64_t outs = std::min<int64_t>(kOutBlock, Cout - o);
        for (int64_t t = 0; t < taps; t += kTapBlock) {
          const int64_t block_taps = std::min<int64_t>(kTapBlock, taps - t);
          kWeightGradBlocks[(outs - 1) * kTapBlock + block_taps - 1](
              in, dyp + (n * Cout + o) * g.P(), tap_offset.data() + t, g, acc + o * taps + t, taps);
        }
      }
    }
  });
  at::Tensor dw = at::empty({Cout, g.C, g.kh, g.kw}, x.options());
  float* dwp = dw.mutable_data_ptr<float>();
  for (int64_t i = 0; i < Cout * taps; ++i) {  // dw's (o, c, i, j) order is (o, tap)
    __m512 sum = _mm512_setzero_ps();
    for (int64_t k = 0; k < threads; ++k) sum = _mm512_add_ps(sum, partial[k * Cout * taps + i]);
    dwp[i] = _mm512_reduce_add_ps(sum);
  }
  return dw;
#else
  TORCH_INTERNAL_ASSERT(false, "zoo conv2d: the direct kernel needs AVX-512");
#endif
}

}  // namespace zoo::cpu::direct
