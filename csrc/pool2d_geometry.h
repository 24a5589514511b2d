// The geometry of one 2-D max pooling, shared by the CPU and CUDA kernels.
// Torch-free (plain C++17), so the CUDA kernel files can include it; checks.h
// builds it from a tensor and the pooling arguments.
#pragma once

#include <cstdint>

#include "host_device.h"

namespace zoo {

struct Pool2dGeometry {
  int64_t H, W;    // input size (per plane)
  int64_t kh, kw;  // window size
  int64_t sh, sw;  // stride
  int64_t ph, pw;  // implicit -inf padding on each side
  int64_t dh, dw;  // dilation
  int64_t Ho, Wo;  // output size (floor or ceil mode, as torch computes it)

  // One dimension of an output's window as torch walks it: input positions first, first + dilation, ...
  // below end. first is the window's start moved past the padding by whole dilation steps (and is torch's
  // index before any value is read); end stops at the input's edge. first >= end for a window that holds no
  // input value (an edge of ceil mode with dilation).
  struct Range {
    int64_t first, end;
  };

  ZOO_HOST_DEVICE static Range window(int64_t out, int64_t stride, int64_t pad, int64_t kernel, int64_t dilation,
                                      int64_t size) {
    const int64_t start = out * stride - pad, span_end = start + (kernel - 1) * dilation + 1;
    int64_t first = start;
    while (first < 0) first += dilation;
    return {first, span_end < size ? span_end : size};
  }
  ZOO_HOST_DEVICE Range rows(int64_t oh) const { return window(oh, sh, ph, kh, dh, H); }
  ZOO_HOST_DEVICE Range cols(int64_t ow) const { return window(ow, sw, pw, kw, dw, W); }
};

// torch's pooling_output_shape: floor (or, in ceil mode, ceiling) of the window count, where in ceil mode
// the last window must start inside the input or its left padding.
inline int64_t pool2d_output_size(int64_t size, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                                  bool ceil_mode) {
  const int64_t span = dilation * (kernel - 1) + 1;
  const int64_t numerator = size + 2 * padding - span + (ceil_mode ? stride - 1 : 0);
  const int64_t floor_div = numerator >= 0 ? numerator / stride : -((-numerator + stride - 1) / stride);
  int64_t out = floor_div + 1;
  if (ceil_mode && (out - 1) * stride >= size + padding) --out;
  return out;
}

}  // namespace zoo
