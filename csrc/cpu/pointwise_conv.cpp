// Pointwise convolution as per-image matrix products (see pointwise_conv.h).
#include "cpu/pointwise_conv.h"

#include "cpu/gemm.h"
#include "cpu/own_product.h"
#include "cpu/streaming.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace zoo::cpu::pointwise {

#if defined(ZOO_HAVE_AVX512_GEMM)

bool applies(const Conv2dGeometry& g, at::ScalarType dtype) {
  return g.pointwise() && own_products(dtype);
}

namespace {

// Columns of an image per task: whole images when they are small (the presets' 8x8 and
// 16x16), several tasks per image for larger ones, so that a batch of one image still
// runs on every thread.
constexpr int64_t kTaskColumns = 8 * gemm::kColumns;

// body(n, j0, j1) for columns [j0, j1) of image n, for every image of the batch, over the threads.
template <typename Body>
void for_each_column_block(int64_t N, int64_t P, const Body& body) {
  const int64_t blocks = (P + kTaskColumns - 1) / kTaskColumns;
  at::parallel_for(0, N * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks, j0 = task % blocks * kTaskColumns;
      body(n, j0, std::min(P, j0 + kTaskColumns));
    }
  });
}

// out (rows x cols, rows P apart) = a (rows x inner, dense) in (inner x cols, rows P apart) for a
// column block of one image of a batch in memory (row i starting from row_bias[i] when given): the
// packing prefetches the input, and with `stream` (an output too large for the caches to keep) the
// block goes straight to memory, fenced before the task moves on. Together: a per-image product
// on a batch read from and written to memory ran at 211 instead of 126 GFLOP/s on one core of
// the AMD EPYC VM (in cache: 254).
void image_product(bool stream, int64_t rows, int64_t cols, int64_t inner, const float* a, const float* in,
                   int64_t P, float* out, const float* row_bias = nullptr) {
  if (stream) {
    gemm::product</*Add=*/false, false, false, /*Stream=*/true, /*Prefetch=*/true>(rows, cols, inner, a, inner, in, P,
                                                                                    out, P, row_bias);
    _mm_sfence();
  } else {
    gemm::product</*Add=*/false, false, false, /*Stream=*/false, /*Prefetch=*/true>(rows, cols, inner, a, inner, in,
                                                                                     P, out, P, row_bias);
  }
}

}  // namespace

void forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const Conv2dGeometry& g,
             at::Tensor& y) {
  const int64_t N = x.size(0), C = g.C, Cout = g.Cout, P = g.P();
  const float* w = weight.const_data_ptr<float>();  // (Cout, C)
  const float* b = bias.defined() ? bias.const_data_ptr<float>() : nullptr;
  const float* xp = x.const_data_ptr<float>();
  float* yp = y.mutable_data_ptr<float>();
  const bool stream = writes_streaming(y.numel() * static_cast<int64_t>(sizeof(float)));
  for_each_column_block(N, P, [&](int64_t n, int64_t j0, int64_t j1) {
    // Each row (output channel) starts from its bias.
    image_product(stream, Cout, j1 - j0, C, w, xp + n * C * P + j0, P, yp + n * Cout * P + j0, b);
  });
}

void backward_input(const at::Tensor& dy, const at::Tensor& weight, const Conv2dGeometry& g, at::Tensor& dx) {
  const int64_t N = dy.size(0), C = g.C, Cout = g.Cout, P = g.P();
  const at::Tensor w_t = weight.view({Cout, C}).t().contiguous();  // (C, Cout)
  const float* wt = w_t.const_data_ptr<float>();
  const float* dyp = dy.const_data_ptr<float>();
  float* dxp = dx.mutable_data_ptr<float>();
  const bool stream = writes_streaming(dx.numel() * static_cast<int64_t>(sizeof(float)));
  for_each_column_block(N, P, [&](int64_t n, int64_t j0, int64_t j1) {
    image_product(stream, C, j1 - j0, Cout, wt, dyp + n * Cout * P + j0, P, dxp + n * C * P + j0);
  });
}

at::Tensor backward_weight(const at::Tensor& x, const at::Tensor& dy, const Conv2dGeometry& g) {
  const int64_t N = x.size(0), C = g.C, Cout = g.Cout, P = g.P();
  // dW^T (C, Cout) += x[n] dy[n]^T, on our kernel reading dy[n] as the transpose it holds; one
  // accumulator per thread, summed at the end.
  at::Tensor partial = at::zeros({at::get_num_threads(), C, Cout}, x.options());
  const float* xp = x.const_data_ptr<float>();
  const float* dyp = dy.const_data_ptr<float>();
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    float* accumulator = partial[at::get_thread_num()].mutable_data_ptr<float>();
    for (int64_t n = begin; n < end; ++n)
      gemm::product</*Add=*/true, /*TransA=*/false, /*TransB=*/true>(C, Cout, P, xp + n * C * P, P,
                                                                      dyp + n * Cout * P, P, accumulator, Cout);
  });
  return partial.sum(0).t().contiguous().view({Cout, C, 1, 1});
}

#else

bool applies(const Conv2dGeometry&, at::ScalarType) { return false; }
void forward(const at::Tensor&, const at::Tensor&, const at::Tensor&, const Conv2dGeometry&, at::Tensor&) {}
void backward_input(const at::Tensor&, const at::Tensor&, const Conv2dGeometry&, at::Tensor&) {}
at::Tensor backward_weight(const at::Tensor&, const at::Tensor&, const Conv2dGeometry&) { return {}; }

#endif

}  // namespace zoo::cpu::pointwise
