// CPU 2-D convolution (groups = 1) on ATen tensors: im2col/col2im of our own
// around a BLAS matrix product (at::mm, backed by MKL in the CPU wheel).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <tuple>
#include <vector>

namespace zoo::cpu {

// x (N, Cin, H, W), weight (Cout, Cin, kh, kw), optional bias (Cout).
// stride, padding and dilation each hold (height, width). Returns a
// contiguous (N, Cout, Ho, Wo) tensor.
at::Tensor conv2d_forward(const at::Tensor& x, const at::Tensor& weight,
                          const std::optional<at::Tensor>& bias, std::vector<int64_t> stride,
                          std::vector<int64_t> padding, std::vector<int64_t> dilation);

// Gradients (dx, dweight, dbias) for output_mask = {dx, dweight, dbias}; an
// output that is not asked for comes back as an empty (numel 0) tensor.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight,
    std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
    std::array<bool, 3> output_mask);

}  // namespace zoo::cpu
