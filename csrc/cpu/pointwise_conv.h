// Pointwise (1x1, stride 1, unpadded) float32 convolution as one matrix product per
// image on our AVX-512 kernel: y[n] = W x[n], where x[n] is already the (C, H W) matrix
// the product needs. The im2col path gathers a chunk of images into one column matrix,
// scatters the product back and zero-fills dx first: on the NIN 1x1 layers over 8x8
// images those copies cost as much as the products (forward + backward 0.74-0.76x of
// torch's). Used where the im2col path's products run on our kernel too
// (gemm::replaces_mkl: on Intel, MKL's products and that path stay).
#pragma once

#include "conv2d_geometry.h"

#include <ATen/ATen.h>

namespace zoo::cpu::pointwise {

// Whether these kernels compute the layer: pointwise, float32, products on our kernel.
bool applies(const Conv2dGeometry& g, at::ScalarType dtype);

// y (N, Cout, H, W), contiguous, = conv2d(x, weight) + bias (bias may be undefined).
void forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const Conv2dGeometry& g,
             at::Tensor& y);

// dx (N, C, H, W), contiguous, = W^T dy[n] for every image.
void backward_input(const at::Tensor& dy, const at::Tensor& weight, const Conv2dGeometry& g, at::Tensor& dx);

// The weight gradient (Cout, C, 1, 1) = sum over images of dy[n] x[n]^T.
at::Tensor backward_weight(const at::Tensor& x, const at::Tensor& dy, const Conv2dGeometry& g);

}  // namespace zoo::cpu::pointwise
