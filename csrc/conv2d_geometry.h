// The geometry of one 2-D convolution (groups = 1), shared by the CPU and CUDA
// kernels. Torch-free (plain C++17), so the CUDA kernel files can include it;
// checks.h builds it from tensors, refusing sizes whose arithmetic would overflow.
#pragma once

#include "host_device.h"

#include <cstdint>

namespace zoo {

struct Conv2dGeometry {
  int64_t C, H, W;     // input channels and size (per image)
  int64_t Cout;        // output channels
  int64_t kh, kw;      // kernel size
  int64_t sh, sw;      // stride
  int64_t ph, pw;      // zero padding on each side
  int64_t dh, dw;      // dilation
  int64_t Ho, Wo;      // output size: (H + 2 ph - dh (kh - 1) - 1) / sh + 1, and so for W

  // Rows of the column matrix: (channel, kernel row, kernel column).
  ZOO_HOST_DEVICE int64_t K() const { return C * kh * kw; }
  // Output pixels of one image: columns of the column matrix.
  ZOO_HOST_DEVICE int64_t P() const { return Ho * Wo; }
  // A 1x1, stride-1, unpadded convolution: the input itself is the column matrix.
  ZOO_HOST_DEVICE bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

}  // namespace zoo
