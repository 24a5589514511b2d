// What zoo's dropout kernels share (CPU and CUDA): which elements an (x, p, seed) keeps, and
// their scale. Element i (in row-major order of x's shape, whatever its strides) is kept when
// word i % 4 of Philox block i / 4 of the seed's stream is below keep_threshold(p), so each
// is kept with probability 1 - p (within 2^-32). Kept elements are multiplied by 1 / (1 - p),
// dropped ones by 0, as torch's dropout multiplies by its mask (NaN and inf stay NaN).
// The backward is the same function of the gradient with the same seed.
// Torch-free (plain C++17) for the .cu files.
#pragma once

#include <cmath>
#include <cstdint>

#include "philox.h"

namespace zoo::dropout {

// Words below this are kept: floor((1 - p) * 2^32), 2^32 for p = 0 (keep all), 0 for p = 1.
inline uint64_t keep_threshold(double p) {
  return static_cast<uint64_t>(std::floor(std::ldexp(1.0 - p, 32)));
}

// The factor of a kept element, computed as torch computes its mask's 1 / (1 - p): in the
// element type (for p = 1 nothing is kept and the factor is never used).
template <typename scalar_t>
scalar_t keep_scale(double p) {
  return p < 1.0 ? scalar_t(1) / static_cast<scalar_t>(1.0 - p) : scalar_t(0);
}

}  // namespace zoo::dropout
