// CPU dropout: y = x * (kept ? 1 / (1 - p) : 0), element i kept as csrc/dropout.h says.
//
// The Philox blocks are computed kBlocks at a time in a loop the compiler vectorises
// (32x32 -> 64-bit multiplies, xors and adds; with AVX-512, 8 blocks per instruction),
// then applied to the 4 * kBlocks elements they cover. torch's CPU dropout draws one
// Bernoulli number at a time from its generator (aten::bernoulli_).
#include "checks.h"
#include "cpu/memory.h"
#include "dropout.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

namespace zoo::cpu {
namespace {

constexpr int64_t kBlocks = 16;                // Philox blocks per batch: 64 elements
constexpr int64_t kBatchesPerTask = 1024;      // 64 Ki elements per parallel task

template <typename scalar_t>
void dropout_kernel(const scalar_t* x, scalar_t* y, int64_t n, uint64_t seed, double p) {
  const dropout::KeepRule<scalar_t> rule = dropout::keep_rule<scalar_t>(p);
  const uint32_t last = rule.last;
  const scalar_t kept = rule.factor;
  const int64_t batches = (n + 4 * kBlocks - 1) / (4 * kBlocks);
  at::parallel_for(0, batches, kBatchesPerTask, [=](int64_t begin, int64_t end) {  // by value: no aliasing with y
    alignas(64) uint32_t words[4 * kBlocks];  // word t is element first + t's
    for (int64_t batch = begin; batch < end; ++batch) {
      const int64_t first_block = batch * kBlocks;
#pragma omp simd
      for (int64_t b = 0; b < kBlocks; ++b) {
        const philox::Block r = philox::stream_block(seed, static_cast<uint64_t>(first_block + b));
        for (int w = 0; w < 4; ++w) words[4 * b + w] = r.v[w];
      }
      const int64_t i0 = 4 * first_block, count = std::min(4 * kBlocks, n - i0);
      const scalar_t* xb = x + i0;
      scalar_t* yb = y + i0;
      // (x * 1 or x * 0) * kept: x * kept or x * 0 exactly (NaN stays NaN), branch-free so it vectorises.
#pragma omp simd
      for (int64_t t = 0; t < count; ++t) yb[t] = xb[t] * static_cast<scalar_t>(words[t] <= last) * kept;
    }
  });
}

at::Tensor dropout(const at::Tensor& x, double p, const at::Tensor& seed) {
  TORCH_CHECK_VALUE(x.device().is_cpu(), "zoo dropout (CPU kernel): x is on ", x.device());
  checks::check_dropout(x, p, seed);
  const at::Tensor input = x.contiguous();  // element i is the i-th in row-major order
  at::Tensor y = empty_output(input.sizes(), input.options());
  if (y.numel() == 0) return y;
  const auto seed_value = static_cast<uint64_t>(seed.item<int64_t>());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_dropout", [&] {
    dropout_kernel(input.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), input.numel(), seed_value, p);
  });
  return y;
}

}  // namespace
}  // namespace zoo::cpu

TORCH_LIBRARY_IMPL(zoo, CPU, m) { m.impl("dropout", &zoo::cpu::dropout); }
