// zoo's CUDA operators (host side, compiled only when torch has CUDA).
// Same semantics as the CPU versions in namespace zoo::cpu; outputs are always newly
// allocated. x may be NCHW-contiguous or channels_last; other layouts are made contiguous.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

namespace zoo::cuda {

// x: (N,C) or (N,C,H,W). Returns (y, mean, invstd, var_unbiased); stats have x's dtype, shape (C).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_train(
    const at::Tensor& x, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias, double eps);

at::Tensor batch_norm_eval(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const at::Tensor& running_mean,
                           const at::Tensor& running_var, double eps);

// Returns (dx, dweight, dbias); dweight/dbias shape (C) even when weight is absent.
// mean/invstd are the saved batch stats (train) or running_mean and rsqrt(running_var+eps) (eval).
std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const at::Tensor& mean, const at::Tensor& invstd, bool train);

// x (N,Cin,H,W), weight (Cout,Cin,kh,kw), bias (Cout) optional. stride/padding/dilation have 2 entries.
at::Tensor conv2d_forward(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation);

// output_mask = {need dx, need dweight, need dbias}; an output that is not needed is returned
// as an empty tensor (numel 0).
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, std::vector<int64_t> stride,
    std::vector<int64_t> padding, std::vector<int64_t> dilation, std::array<bool, 3> output_mask);

}  // namespace zoo::cuda
