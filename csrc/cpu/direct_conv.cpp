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

constexpr int64_t kMaxInputChannels = 8, kMaxOutputChannels = 64;

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

#endif  // __AVX512F__

}  // namespace

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

}  // namespace zoo::cpu::direct
