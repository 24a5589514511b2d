// Numerically stable per-channel statistics for batch norm.
//
// Data is summarised chunk by chunk: a chunk small enough to stay in L1 is
// read twice (sum, then squared deviations from the chunk mean), and chunk
// summaries (count, mean, M2) are merged with Chan et al.'s parallel formula
// in double precision. This never forms E[x^2] - E[x]^2, so large means do
// not cancel the variance away, and it reads main memory only once.
#pragma once

#include <algorithm>
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

// Sum of f(r, i) over runs r in [0, runs) and i in [0, n), with many independent
// partial sums, so vector adds pipeline instead of waiting on one accumulator
// (that chain, not memory, bounded the statistics loops when written as one
// `omp simd reduction`). The partial sums carry over from run to run: short
// runs (batch norm of small images) would otherwise pay one horizontal
// reduction each, which cost more than the adds.
template <typename T, typename F>
inline T pipelined_sum_runs(int64_t runs, int64_t n, F f) {
  constexpr int64_t kLanes = 256 / sizeof(T);  // 4 x 64-byte vectors
  T partial[kLanes] = {};
  for (int64_t r = 0; r < runs; ++r) {
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (int64_t l = 0; l < kLanes; ++l) partial[l] += f(r, i + l);
    }
    for (int64_t l = 0; i < n; ++i, ++l) partial[l] += f(r, i);
  }
  T total = 0;
  for (int64_t l = 0; l < kLanes; ++l) total += partial[l];
  return total;
}

// Sum of f(i) for i in [0, n): pipelined_sum_runs over one run.
template <typename T, typename F>
inline T pipelined_sum(int64_t n, F f) {
  return pipelined_sum_runs<T>(1, n, [&f](int64_t, int64_t i) { return f(i); });
}

// Values summed in the input precision before a merge in double: 8 KiB of float,
// which stays in L1 for the second read.
constexpr int64_t kStatisticsChunk = 2048;

// body(offset, rows, len) for groups of about kStatisticsChunk values of `runs` runs of
// `n` values, `stride` apart: `rows` whole runs from element `offset` when runs are
// short, else pieces of `len` values of one run.
template <typename Body>
inline void for_each_statistics_group(int64_t runs, int64_t stride, int64_t n, const Body& body) {
  const int64_t piece = std::min(n, kStatisticsChunk);
  const int64_t group = n < kStatisticsChunk ? std::max<int64_t>(1, kStatisticsChunk / n) : 1;
  for (int64_t r0 = 0; r0 < runs; r0 += group) {
    const int64_t rows = std::min(group, runs - r0);
    for (int64_t start = 0; start < n; start += piece) body(r0 * stride + start, rows, std::min(piece, n - start));
  }
}

// Merge the statistics of `runs` runs of `n` values, `stride` apart, into `w`: each
// group is read twice (sum, then squared deviations from the group mean) and merged.
template <typename scalar_t>
inline void welford_add_runs(Welford& w, const scalar_t* x, int64_t runs, int64_t stride, int64_t n) {
  using acc_t = scalar_t;  // groups are short: sums in the input precision, merged in double
  for_each_statistics_group(runs, stride, n, [&](int64_t offset, int64_t rows, int64_t len) {
    const scalar_t* p = x + offset;
    const auto at = [p, stride](int64_t r, int64_t i) { return acc_t(p[r * stride + i]); };
    const acc_t mean = pipelined_sum_runs<acc_t>(rows, len, at) / static_cast<acc_t>(rows * len);
    const acc_t m2 = pipelined_sum_runs<acc_t>(rows, len, [&at, mean](int64_t r, int64_t i) {
      const acc_t d = at(r, i) - mean;
      return d * d;
    });
    w.merge(rows * len, static_cast<double>(mean), static_cast<double>(m2));
  });
}

}  // namespace zoo::cpu
