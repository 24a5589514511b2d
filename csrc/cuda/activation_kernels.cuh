// Activation CUDA kernels: raw-pointer host launchers (no torch headers).
// Safe to include from host-only C++ (needs the CUDA include directory).
#pragma once

#include "activation.h"

#include <cuda_runtime_api.h>

#include <cstdint>

namespace zoo::cuda::kernels {

// y[i] = a(x[i]) over n values (activation.h); scalar_t is float or double.
template <typename scalar_t>
void activation(const scalar_t* x, scalar_t* y, int64_t n, activation::Activation a, cudaStream_t stream);

// dx[i] = a's derivative at x[i] times dy[i].
template <typename scalar_t>
void activation_backward(const scalar_t* dy, const scalar_t* x, scalar_t* dx, int64_t n, activation::Activation a,
                         cudaStream_t stream);

}  // namespace zoo::cuda::kernels
