// What zoo's dropout kernels share (CPU and CUDA): which elements an (x, p, seed) keeps, and
// their scale. Element i (in row-major order of x's shape, whatever its strides) is kept when
// word i % 4 of Philox block i / 4 of the seed's stream is below floor((1 - p) 2^32)
// (keep_rule), so each is kept with probability 1 - p (within 2^-32). Kept elements are multiplied by 1 / (1 - p),
// dropped ones by 0, as torch's dropout multiplies by its mask (NaN and inf stay NaN).
// The backward is the same function of the gradient with the same seed.
// Torch-free (plain C++17) for the .cu files.
#pragma once

#include <cmath>
#include <cstdint>

#include "philox.h"

namespace zoo::dropout {

// The rule both kernels apply: y = x * (word <= last) * factor, branch-free. Words below
// floor((1 - p) * 2^32) are kept, as word <= last in 32 bits; factor is torch's 1 / (1 - p),
// computed as torch computes its mask's, in the element type. For p = 1 nothing may be kept
// (the threshold is 0): last is 2^32 - 1, so every word passes, and the factor is 0.
template <typename scalar_t>
struct KeepRule {
  uint32_t last;
  scalar_t factor;
};

template <typename scalar_t>
KeepRule<scalar_t> keep_rule(double p) {
  const auto threshold = static_cast<uint64_t>(std::floor(std::ldexp(1.0 - p, 32)));  // 2^32 for p = 0
  if (threshold == 0) return {UINT32_MAX, scalar_t(0)};
  return {static_cast<uint32_t>(threshold - 1), scalar_t(1) / static_cast<scalar_t>(1.0 - p)};
}

}  // namespace zoo::dropout
