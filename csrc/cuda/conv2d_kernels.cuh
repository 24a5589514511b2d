// Conv2d (groups = 1) CUDA kernels: raw-pointer host launchers (no torch headers).
// Safe to include from host-only C++ (needs the CUDA include directory).
//
// Tensors are contiguous NCHW: x (N, C, H, W), weight (Cout, C, kh, kw) viewed as a
// row-major (Cout, K) matrix with K = C * kh * kw, y (N, Cout, Ho, Wo), P = Ho * Wo
// (see csrc/conv2d_geometry.h).
// scalar_t is float or double.
//
// The conv launchers process a chunk of B images (pass pointers to the chunk's first
// image). They need a scratch buffer of conv2d_*_workspace_elems(shape, B) elements of
// scalar_t (may be nullptr when that is 0): it holds the im2col matrix (K x P per image,
// skipped for 1x1 / stride 1 / no padding convolutions) and split-K partial products.
// The size depends on B, so when the last chunk is smaller size the buffer as the max
// over the chunk sizes used.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "conv2d_geometry.h"

namespace zoo::cuda::kernels {

using zoo::Conv2dGeometry;

// --- convolution passes (per chunk of B images) ----------------------------------

template <typename scalar_t>
size_t conv2d_forward_workspace_elems(const Conv2dGeometry& s, int64_t B);

// y = W * col(x) + bias (bias may be nullptr).
template <typename scalar_t>
void conv2d_forward(const scalar_t* x, const scalar_t* weight, const scalar_t* bias, scalar_t* y, int64_t B,
                    const Conv2dGeometry& s, scalar_t* workspace, cudaStream_t stream);

template <typename scalar_t>
size_t conv2d_backward_input_workspace_elems(const Conv2dGeometry& s, int64_t B);

// dx = col2im(W^T * dy). Overwrites dx.
template <typename scalar_t>
void conv2d_backward_input(const scalar_t* grad_y, const scalar_t* weight, scalar_t* grad_x, int64_t B,
                           const Conv2dGeometry& s, scalar_t* workspace, cudaStream_t stream);

template <typename scalar_t>
size_t conv2d_backward_weight_workspace_elems(const Conv2dGeometry& s, int64_t B);

// dW (Cout x K) = [accumulate ? dW : 0] + sum over the chunk's images of dy_b * col(x_b)^T.
template <typename scalar_t>
void conv2d_backward_weight(const scalar_t* grad_y, const scalar_t* x, scalar_t* grad_w, int64_t B,
                            const Conv2dGeometry& s, bool accumulate, scalar_t* workspace, cudaStream_t stream);

// Bytes of scratch for conv2d_backward_bias (0 if none is needed).
template <typename scalar_t>
size_t conv2d_backward_bias_workspace_bytes(int64_t N, int64_t Cout, int64_t P);

// db[co] = sum over n, p of dy[n][co][p], for the whole batch at once (no chunking needed).
template <typename scalar_t>
void conv2d_backward_bias(const scalar_t* grad_y, int64_t N, int64_t Cout, int64_t P, scalar_t* grad_b,
                          void* workspace, cudaStream_t stream);

}  // namespace zoo::cuda::kernels
