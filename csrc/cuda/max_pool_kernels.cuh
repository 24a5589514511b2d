// Max-pooling CUDA kernels: raw-pointer host launchers (no torch headers).
// Safe to include from host-only C++ (needs the CUDA include directory).
//
// Tensors are contiguous NCHW, seen as `planes` = N * C planes of H x W inputs and
// Ho x Wo outputs (see csrc/pool2d_geometry.h). scalar_t is float or double.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "pool2d_geometry.h"

namespace zoo::cuda::kernels {

using zoo::Pool2dGeometry;

// y = the maximum of each window (padding counting as -inf; NaN wins), and, when indices is not nullptr, its
// index within the plane: torch's values, ties (the first maximum) and indices.
template <typename scalar_t>
void max_pool2d_forward(const scalar_t* x, scalar_t* y, int64_t* indices, int64_t planes, const Pool2dGeometry& g,
                        cudaStream_t stream);

// dx: each input gathers the gradients of the outputs whose index is its own, in output order (deterministic,
// no atomics). Overwrites dx.
template <typename scalar_t>
void max_pool2d_backward(const scalar_t* grad_y, const int64_t* indices, scalar_t* grad_x, int64_t planes,
                         const Pool2dGeometry& g, cudaStream_t stream);

}  // namespace zoo::cuda::kernels
