// CPU batch-norm kernels on ATen tensors.
//
// x is (N, C), (N, C, L) or (N, C, H, W), float32 or float64, either
// contiguous or (4-D) channels-last; callers convert other layouts first.
// Outputs are newly allocated with x's memory format.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace zoo::cpu {

// Training forward. Returns (y, mean, invstd, var_unbiased): the batch mean and
// 1/sqrt(biased var + eps) that normalised x (and that backward needs), and the
// unbiased variance that the running statistics track.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_train(
    const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, double eps);

// Inference forward from running statistics.
at::Tensor batch_norm_eval(
    const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& running_mean,
    const at::Tensor& running_var, double eps);

// Fused backward. mean/invstd are the saved batch statistics when `train`,
// else running_mean and 1/sqrt(running_var + eps). Returns (dx, dweight,
// dbias); dweight and dbias have shape (C) even when there is no weight.
std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_backward(
    const at::Tensor& grad_y, const at::Tensor& x,
    const std::optional<at::Tensor>& weight, const at::Tensor& mean,
    const at::Tensor& invstd, bool train);

}  // namespace zoo::cpu
