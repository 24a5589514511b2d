// Numerically stable per-channel statistics for batch norm.
//
// Data is summarised chunk by chunk: a chunk small enough to stay in L1 is
// read twice (sum, then squared deviations from the chunk mean), and chunk
// summaries (count, mean, M2) are merged with Chan et al.'s parallel formula
// in double precision. This never forms E[x^2] - E[x]^2, so large means do
// not cancel the variance away, and it reads main memory only once.
#pragma once

#include <cstdint>

namespace zoo::cpu {

// Running (count, mean, M2) of one channel; M2 is the sum of squared deviations.
struct Welford {
  int64_t count = 0;
  double mean = 0.0;
  double m2 = 0.0;

  void merge(int64_t other_count, double other_mean, double other_m2) {
    if (other_count == 0) return;
    const int64_t total = count + other_count;
    const double delta = other_mean - mean;
    const double other_share = static_cast<double>(other_count) / static_cast<double>(total);
    mean += delta * other_share;
    m2 += other_m2 + delta * delta * static_cast<double>(count) * other_share;
    count = total;
  }

  void merge(const Welford& other) { merge(other.count, other.mean, other.m2); }
};

// Sum of f(i) for i in [0, n) with many independent partial sums, so vector
// adds pipeline instead of waiting on one accumulator (that chain, not memory,
// bounded the statistics loops when written as one `omp simd reduction`).
template <typename T, typename F>
inline T pipelined_sum(int64_t n, F f) {
  constexpr int64_t kLanes = 256 / sizeof(T);  // 4 x 64-byte vectors
  T partial[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) partial[l] += f(i + l);
  }
  T total = 0;
  for (; i < n; ++i) total += f(i);
  for (int64_t l = 0; l < kLanes; ++l) total += partial[l];
  return total;
}

// Merge the statistics of a contiguous run of `n` values into `w`.
template <typename scalar_t>
inline void welford_add_contiguous(Welford& w, const scalar_t* x, int64_t n) {
  constexpr int64_t kChunk = 2048;  // 8 KiB of float: stays in L1 for the second read
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t len = n - start < kChunk ? n - start : kChunk;
    const scalar_t* p = x + start;
    using acc_t = scalar_t;  // chunks are short: float sums in float, merged in double
    const acc_t sum = pipelined_sum<acc_t>(len, [p](int64_t i) { return acc_t(p[i]); });
    const acc_t mean = sum / static_cast<acc_t>(len);
    const acc_t m2 = pipelined_sum<acc_t>(len, [p, mean](int64_t i) {
      const acc_t d = p[i] - mean;
      return d * d;
    });
    w.merge(len, static_cast<double>(mean), static_cast<double>(m2));
  }
}

}  // namespace zoo::cpu
