// Maxout's view of its input, shared by the CPU and CUDA kernels (no torch headers, so the .cu files can
// include it): x (N, pieces * C, ...) contiguous is G = N * C groups of `pieces` runs of S values (S = the
// product of the dimensions after 1; 1 for (N, F)); y (N, C, ...) is G runs of S values, run g the
// element-wise maximum of group g's pieces.
#pragma once

#include "host_device.h"

#include <cstdint>
#include <vector>

namespace zoo::maxout {

struct Groups {
  int64_t G, pieces, S;
};

// The groups of x with sizes[0..dim) (a checked x: dim >= 2, sizes[1] a multiple of pieces).
inline Groups groups_of(const int64_t* sizes, int64_t dim, int64_t pieces) {
  int64_t S = 1;
  for (int64_t d = 2; d < dim; ++d) S *= sizes[d];
  return {sizes[0] * (sizes[1] / pieces), pieces, S};
}

// y's shape: x's with dimension 1 divided by pieces.
inline std::vector<int64_t> output_shape(const int64_t* sizes, int64_t dim, int64_t pieces) {
  std::vector<int64_t> shape(sizes, sizes + dim);
  shape[1] /= pieces;
  return shape;
}

// The larger of a and b, NaN if either is (torch's amax propagates NaN).
template <typename T>
ZOO_HOST_DEVICE inline T nan_max(T a, T b) {
  return (b > a || b != b) ? b : a;
}

}  // namespace zoo::maxout

#undef ZOO_HOST_DEVICE
