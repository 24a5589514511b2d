// Winograd convolution on the CPU: F(2x2, 3x3) and F(2x2, 5x5), stride 1, undilated.
//
// Each 2x2 block of outputs ("tile") is computed from an alpha x alpha block of input
// (alpha = 2 + r - 1: 4 for 3x3 kernels, 6 for 5x5) as
// Y = A^T [(G g G^T) . (B^T d B)] A, so the products reduce to alpha^2 GEMMs (one per
// position of the transformed tile): 2.25x fewer multiplications than the direct or
// im2col convolution for 3x3 kernels, 2.8x fewer for 5x5 (Lavin & Gray, 2016).
// The input gradient is the same convolution of dy with the flipped, transposed
// kernel; the weight gradient is G^T [sum over tiles (A dY A^T) . (B^T d B)] G,
// alpha^2 GEMMs again. All are exact in exact arithmetic; in floating point the
// transforms add roundings (error measured in docs/benchmarks.md).
#pragma once

#include "conv2d_geometry.h"

#include <ATen/ATen.h>

namespace zoo::cpu::winograd {

// Whether the layer is one these compute (3x3 or 5x5, stride 1, undilated, padding
// below the kernel size), and computes faster than im2col + GEMM here for this batch
// size (enough channels and tiles for the products to dominate).
bool applies(const Conv2dGeometry& g, int64_t batch);

// y (N, Cout, Ho, Wo), contiguous, = conv2d(x, weight) + bias (bias may be undefined).
void forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const Conv2dGeometry& g,
             at::Tensor& y);

// dx (N, C, H, W), contiguous, = the input gradient for output gradient dy.
void backward_input(const at::Tensor& dy, const at::Tensor& weight, const Conv2dGeometry& g, at::Tensor& dx);

// The weight gradient (Cout, C, r, r) for input x and output gradient dy.
at::Tensor backward_weight(const at::Tensor& x, const at::Tensor& dy, const Conv2dGeometry& g);

}  // namespace zoo::cpu::winograd
