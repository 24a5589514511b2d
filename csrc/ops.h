// zoo's operators as C++ functions that call torch's dispatcher, which picks
// the CPU or CUDA kernel (csrc/cpu, csrc/cuda) or the autograd wrapper
// (csrc/autograd). The schemas are declared once, in ops.cpp.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/string_view.h>

#include <array>
#include <optional>
#include <tuple>

namespace zoo::ops {

// Training batch norm: (y, mean, invstd, var_unbiased) of x (N, C, ...), statistics of shape (C);
// the running buffers given are updated in place with `momentum` (running_stats.h). With an
// `activation` ("relu", "leaky_relu" of slope `alpha`, "elu" of `alpha`; activation.h), y is that
// activation of batch norm's output, computed in the same pass ("none": batch norm alone).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_train(
    const at::Tensor& x, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& running_mean, const std::optional<at::Tensor>& running_var, double momentum,
    double eps, c10::string_view activation, double alpha);

// Inference batch norm from running statistics (then the fused `activation`, as for training).
at::Tensor batch_norm_eval(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const at::Tensor& running_mean,
                           const at::Tensor& running_var, double eps, c10::string_view activation, double alpha);

// Fused backward: (dx, dweight, dbias). mean/invstd are the saved batch statistics when
// `train`, else running_mean and 1/sqrt(running_var + eps); dweight and dbias have shape (C)
// even without a weight. With an `activation` (training only) grad_y is the gradient of the fused
// activation's output: its pre-activation is recomputed from x, mean, invstd, weight and bias
// exactly as the training forward computed it, so no output needs saving.
std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const std::optional<at::Tensor>& weight, const at::Tensor& mean,
    const at::Tensor& invstd, bool train, const std::optional<at::Tensor>& bias, c10::string_view activation,
    double alpha);

// An activation of x, element by element ("relu", "leaky_relu" of slope `alpha`, "elu" of `alpha`, "none":
// a copy; activation.h): torch's relu / leaky_relu / elu, an output in x's layout.
at::Tensor activation(const at::Tensor& x, c10::string_view activation, double alpha);

// Its gradient at x (the input, as torch's leaky_relu and elu backward read it).
at::Tensor activation_backward(const at::Tensor& grad_y, const at::Tensor& x, c10::string_view activation,
                               double alpha);

// 2-D convolution (groups = 1, zero padding): x (N, Cin, H, W), weight (Cout, Cin, kh, kw), bias (Cout).
at::Tensor conv2d(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                  at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation);

// (dx, dweight, dbias) for output_mask = {dx, dweight, dbias}; an output not asked for is empty.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                               const at::Tensor& weight, at::IntArrayRef stride,
                                                               at::IntArrayRef padding, at::IntArrayRef dilation,
                                                               std::array<bool, 3> output_mask);

// 2-D max pooling of x (N, C, H, W), padding counting as -inf; the output size as torch computes it.
at::Tensor max_pool2d(const at::Tensor& x, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode);

// (y, indices): each output's argmax as an index into its (H, W) plane, int64, as torch's.
std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices(const at::Tensor& x, at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride, at::IntArrayRef padding,
                                                           at::IntArrayRef dilation, bool ceil_mode);

// dx: grad_y added at the indices (zero elsewhere); x gives the shape, dtype and device.
at::Tensor max_pool2d_backward(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& indices,
                               at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                               at::IntArrayRef dilation, bool ceil_mode);

// Dropout of x with probability p, the mask drawn from `seed` (csrc/dropout.h); contiguous output.
at::Tensor dropout(const at::Tensor& x, double p, const at::Tensor& seed);

// Maxout over dimension 1 of x (N, pieces * C, ...): y (N, C, ...), y[n, c] = max_j x[n, c * pieces + j] (NaN
// wins, as torch's amax); contiguous output.
at::Tensor maxout(const at::Tensor& x, int64_t pieces);

// (y, mask): mask (x's shape, bool) marks the pieces equal to their maximum, for the backward.
std::tuple<at::Tensor, at::Tensor> maxout_with_mask(const at::Tensor& x, int64_t pieces);

// dx = grad_y / count * mask, count the marked pieces of each maximum: torch's amax gradient (ties share it).
at::Tensor maxout_backward(const at::Tensor& grad_y, const at::Tensor& mask, int64_t pieces);

// Linear layer: y (N, out) = x (N, in) weight (out, in)^T + bias (out), as torch's F.linear on 2-D input.
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias);

// (dx, dweight, dbias) for output_mask = {dx, dweight, dbias}; an output not asked for is empty.
std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                               const at::Tensor& weight,
                                                               std::array<bool, 3> output_mask);

}  // namespace zoo::ops
