// Direct float32 convolution for layers with few input channels (the presets'
// first layers: 1->4, 1->5, 1->32, 4->4, 5->10, NIN's 3->192 and 3->384), forward, weight gradient and
// (up to 16 output channels) input gradient, on AVX-512.
//
// There im2col + GEMM spends its time writing the column matrix (K = C kh kw rows
// of 9-125) and scattering the product back, not multiplying. The forward keeps
// up to 16 output channels of 16 output pixels in zmm registers and, for every
// input tap, loads 16 input pixels once and multiplies them into all of them:
// one load per 16 output channels, no intermediate matrix. The weight gradient is
// a dot product over every output pixel per (output channel, tap): 4 output
// channels x 6 taps of them are summed 16 pixels at a time in registers, one image
// (in L1) at a time. im2col's weight gradient made one tiny product per chunk of
// images (5 x 25 outputs over ~2000 columns), 0.55 ms of the 0.6 ms backward of
// emnist_cnn_1conv's first layer. The input gradient of such a layer (the presets'
// second layers, 4->4 and 5->10) is the forward kernel run on dy with the kernels
// turned by 180 degrees and transposed (a convolution with as few channels).
#pragma once

#include "conv2d_geometry.h"

#include <ATen/ATen.h>

namespace zoo::cpu::direct {

// Whether this kernel computes the layer: float32, an AVX-512 build, stride 1,
// undilated, at most 8 input and 384 output channels (measured up to NIN's 3->384 first layer).
bool applies(const Conv2dGeometry& g, at::ScalarType dtype);

// y (N, Cout, Ho, Wo), contiguous, = conv2d(x, weight) + bias (bias may be undefined).
void forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const Conv2dGeometry& g,
             at::Tensor& y);

// Whether backward_input computes the layer's input gradient: applies() for the layer
// turned around (Cout <= 16 as its input channels), padding at most kernel - 1.
bool applies_to_input_grad(const Conv2dGeometry& g, at::ScalarType dtype);

// dx (N, C, H, W), contiguous, = the input gradient for dy (N, Cout, Ho, Wo), contiguous.
void backward_input(const at::Tensor& dy, const at::Tensor& weight, const Conv2dGeometry& g, at::Tensor& dx);

// dw (Cout, C, kh, kw) for x (N, C, H, W) and dy (N, Cout, Ho, Wo), both contiguous.
at::Tensor backward_weight(const at::Tensor& x, const at::Tensor& dy, const Conv2dGeometry& g);

}  // namespace zoo::cpu::direct
