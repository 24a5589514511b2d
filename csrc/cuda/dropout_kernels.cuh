// Dropout CUDA kernel: raw-pointer host launcher (no torch headers).
// Safe to include from host-only C++ (needs the CUDA include directory).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace zoo::cuda::kernels {

// y[i] = x[i] * (kept ? scale : 0) for the n contiguous elements, element i kept when its Philox word of
// the seed at *seed (read on the device: no host sync) is at most `last` (csrc/dropout.h), the mask the CPU
// kernel draws. scalar_t is float or double.
template <typename scalar_t>
void dropout(const scalar_t* x, scalar_t* y, int64_t n, const int64_t* seed, uint32_t last, scalar_t scale,
             cudaStream_t stream);

}  // namespace zoo::cuda::kernels
