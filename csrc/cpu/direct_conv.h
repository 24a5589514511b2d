// Direct float32 convolution for layers with few input channels (the presets'
// first layers: 1->4, 1->5, 1->32, 4->4, 5->10), forward only, on AVX-512.
//
// There im2col + GEMM spends its time writing the column matrix (K = C kh kw rows
// of 9-125) and scattering the product back, not multiplying. This kernel keeps
// up to 16 output channels of 16 output pixels in zmm registers and, for every
// input tap, loads 16 input pixels once and multiplies them into all of them:
// one load per 16 output channels, no intermediate matrix.
#pragma once

#include "conv2d_geometry.h"

#include <ATen/ATen.h>

namespace zoo::cpu::direct {

// Whether this kernel computes the layer: float32, an AVX-512 build, stride 1,
// undilated, at most 8 input and 64 output channels.
bool applies(const Conv2dGeometry& g, at::ScalarType dtype);

// y (N, Cout, Ho, Wo), contiguous, = conv2d(x, weight) + bias (bias may be undefined).
void forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const Conv2dGeometry& g,
             at::Tensor& y);

}  // namespace zoo::cpu::direct
