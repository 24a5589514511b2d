// Maxout CUDA kernels: raw-pointer host launchers (no torch headers).
// Safe to include from host-only C++ (needs the CUDA include directory).
//
// x is G groups of `pieces` runs of S contiguous values, y G runs of S values (csrc/maxout.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace zoo::cuda::kernels {

// y[g, s] = max_j x[g, j, s] (NaN wins); when mask != nullptr, mask[g, j, s] = (x[g, j, s] == y[g, s]).
// scalar_t is float or double.
template <typename scalar_t>
void maxout(const scalar_t* x, scalar_t* y, bool* mask, int64_t G, int64_t pieces, int64_t S, cudaStream_t stream);

// dx[g, j, s] = dy[g, s] / count * mask[g, j, s], count = sum_j mask[g, j, s] (torch's amax gradient).
template <typename scalar_t>
void maxout_backward(const scalar_t* dy, const bool* mask, scalar_t* dx, int64_t G, int64_t pieces, int64_t S,
                     cudaStream_t stream);

}  // namespace zoo::cuda::kernels
