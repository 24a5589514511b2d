// The zoo operator schemas, declared once for every device (as torchvision and
// pytorch/extension-cpp do). Each device registers its kernels for them with
// TORCH_LIBRARY_IMPL in its own folder: csrc/cpu, csrc/cuda, and
// csrc/autograd for the Autograd key. The fake (meta) kernels that let
// torch.compile and torch.export trace the ops are Python functions in the
// modules named below.
#include "ops.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace zoo::ops {
namespace {

// The typed dispatcher handle of zoo::NAME, looked up once.
template <typename Signature>
c10::TypedOperatorHandle<Signature> handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_train(
    const at::Tensor& x, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& running_mean, const std::optional<at::Tensor>& running_var, double momentum,
    double eps, c10::string_view activation, double alpha) {
  static const auto op = handle<decltype(batch_norm_train)>("zoo::batch_norm_train");
  return op.call(x, weight, bias, running_mean, running_var, momentum, eps, activation, alpha);
}

at::Tensor batch_norm_eval(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const at::Tensor& running_mean,
                           const at::Tensor& running_var, double eps, c10::string_view activation, double alpha) {
  static const auto op = handle<decltype(batch_norm_eval)>("zoo::batch_norm_eval");
  return op.call(x, weight, bias, running_mean, running_var, eps, activation, alpha);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const std::optional<at::Tensor>& weight, const at::Tensor& mean,
    const at::Tensor& invstd, bool train, const std::optional<at::Tensor>& bias, c10::string_view activation,
    double alpha) {
  static const auto op = handle<decltype(batch_norm_backward)>("zoo::batch_norm_backward");
  return op.call(grad_y, x, weight, mean, invstd, train, bias, activation, alpha);
}

at::Tensor activation(const at::Tensor& x, c10::string_view activation, double alpha) {
  static const auto op = handle<decltype(ops::activation)>("zoo::activation");
  return op.call(x, activation, alpha);
}

at::Tensor activation_backward(const at::Tensor& grad_y, const at::Tensor& x, c10::string_view activation,
                               double alpha) {
  static const auto op = handle<decltype(activation_backward)>("zoo::activation_backward");
  return op.call(grad_y, x, activation, alpha);
}

at::Tensor conv2d(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                  at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  static const auto op = handle<decltype(conv2d)>("zoo::conv2d");
  return op.call(x, weight, bias, stride, padding, dilation);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                               const at::Tensor& weight, at::IntArrayRef stride,
                                                               at::IntArrayRef padding, at::IntArrayRef dilation,
                                                               std::array<bool, 3> output_mask) {
  static const auto op = handle<decltype(conv2d_backward)>("zoo::conv2d_backward");
  return op.call(grad_y, x, weight, stride, padding, dilation, output_mask);
}

at::Tensor max_pool2d(const at::Tensor& x, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  static const auto op = handle<decltype(max_pool2d)>("zoo::max_pool2d");
  return op.call(x, kernel_size, stride, padding, dilation, ceil_mode);
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices(const at::Tensor& x, at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride, at::IntArrayRef padding,
                                                           at::IntArrayRef dilation, bool ceil_mode) {
  static const auto op = handle<decltype(max_pool2d_with_indices)>("zoo::max_pool2d_with_indices");
  return op.call(x, kernel_size, stride, padding, dilation, ceil_mode);
}

at::Tensor max_pool2d_backward(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& indices,
                               at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                               at::IntArrayRef dilation, bool ceil_mode) {
  static const auto op = handle<decltype(max_pool2d_backward)>("zoo::max_pool2d_backward");
  return op.call(grad_y, x, indices, kernel_size, stride, padding, dilation, ceil_mode);
}

at::Tensor dropout(const at::Tensor& x, double p, const at::Tensor& seed) {
  static const auto op = handle<decltype(dropout)>("zoo::dropout");
  return op.call(x, p, seed);
}

at::Tensor maxout(const at::Tensor& x, int64_t pieces) {
  static const auto op = handle<decltype(maxout)>("zoo::maxout");
  return op.call(x, pieces);
}

std::tuple<at::Tensor, at::Tensor> maxout_with_mask(const at::Tensor& x, int64_t pieces) {
  static const auto op = handle<decltype(maxout_with_mask)>("zoo::maxout_with_mask");
  return op.call(x, pieces);
}

at::Tensor maxout_backward(const at::Tensor& grad_y, const at::Tensor& mask, int64_t pieces) {
  static const auto op = handle<decltype(maxout_backward)>("zoo::maxout_backward");
  return op.call(grad_y, mask, pieces);
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  static const auto op = handle<decltype(linear)>("zoo::linear");
  return op.call(x, weight, bias);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                               const at::Tensor& weight,
                                                               std::array<bool, 3> output_mask) {
  static const auto op = handle<decltype(linear_backward)>("zoo::linear_backward");
  return op.call(grad_y, x, weight, output_mask);
}

}  // namespace zoo::ops

TORCH_LIBRARY(zoo, m) {
  // torch requires a C++-defined op's Python fake kernel to be registered from the module
  // named here (and imports it when tracing needs the fake kernel).
  m.set_python_module("zoo.ops.batch_norm");
  // Training batch norm updates the running buffers it is given in place, as torch's native_batch_norm does.
  // activation ("relu", "leaky_relu" with slope alpha, "elu" with alpha; activation.h) is applied to the
  // output in the same pass (zoo.nn.BatchNormReLU*d, ...); the backward then needs the bias too, to
  // recompute the pre-activation from x instead of reading a saved output.
  m.def(
      "batch_norm_train(Tensor x, Tensor? weight, Tensor? bias, Tensor(a!)? running_mean, Tensor(b!)? running_var, "
      "float momentum, float eps, str activation=\"none\", float alpha=0.0) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "batch_norm_eval(Tensor x, Tensor? weight, Tensor? bias, Tensor running_mean, Tensor running_var, float eps, "
      "str activation=\"none\", float alpha=0.0) -> Tensor");
  m.def(
      "batch_norm_backward(Tensor grad_y, Tensor x, Tensor? weight, Tensor mean, Tensor invstd, bool train, "
      "Tensor? bias=None, str activation=\"none\", float alpha=0.0) -> (Tensor, Tensor, Tensor)");
  // Synchronized batch norm (zoo.nn.SyncBatchNorm) splits training batch norm around its collectives:
  // local (mean, M2), then batch_norm_eval with the merged statistics; local (sum_dy, sum_dy_xmu), then dx
  // from the sums reduced over every process, `count` values per channel in all.
  m.def("batch_norm_stats(Tensor x) -> (Tensor mean, Tensor m2)");
  m.def("batch_norm_backward_reduce(Tensor grad_y, Tensor x, Tensor mean) -> (Tensor sum_dy, Tensor sum_dy_xmu)");
  m.def(
      "batch_norm_backward_elemt(Tensor grad_y, Tensor x, Tensor? weight, Tensor mean, Tensor invstd, "
      "Tensor sum_dy, Tensor sum_dy_xmu, int count) -> Tensor");
  m.set_python_module("zoo.ops.conv2d");
  m.def("conv2d(Tensor x, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] dilation) -> Tensor");
  m.def(
      "conv2d_backward(Tensor grad_y, Tensor x, Tensor weight, int[] stride, int[] padding, int[] dilation, "
      "bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  // Max pooling: without indices when no gradient is needed (inference, ONNX's MaxPool), with them (each
  // output's argmax within its plane, as torch's max_pool2d_with_indices) for training and return_indices.
  m.set_python_module("zoo.ops.max_pool");
  m.def(
      "max_pool2d(Tensor x, int[2] kernel_size, int[2] stride, int[2] padding, int[2] dilation, bool ceil_mode) "
      "-> Tensor");
  m.def(
      "max_pool2d_with_indices(Tensor x, int[2] kernel_size, int[2] stride, int[2] padding, int[2] dilation, "
      "bool ceil_mode) -> (Tensor, Tensor)");
  m.def(
      "max_pool2d_backward(Tensor grad_y, Tensor x, Tensor indices, int[2] kernel_size, int[2] stride, "
      "int[2] padding, int[2] dilation, bool ceil_mode) -> Tensor");
  // Dropout with an explicit seed (a one-element int64 tensor on x's device): a pure function of its
  // arguments, so tracing, opcheck and the backward (the same op on the gradient, same seed) see
  // the same mask. Which elements are kept: csrc/dropout.h.
  m.set_python_module("zoo.ops.dropout");
  m.def("dropout(Tensor x, float p, Tensor seed) -> Tensor");
  // Element-wise activations on zoo's kernels (zoo.nn.ELU): activation.h's formulas, the backward from x.
  m.set_python_module("zoo.ops.activation");
  m.def("activation(Tensor x, str activation, float alpha=0.0) -> Tensor");
  m.def("activation_backward(Tensor grad_y, Tensor x, str activation, float alpha=0.0) -> Tensor");
  // Maxout: without the mask when no gradient is needed (inference, ONNX's ReduceMax), with it for training.
  m.set_python_module("zoo.ops.maxout");
  m.def("maxout(Tensor x, int pieces) -> Tensor");
  m.def("maxout_with_mask(Tensor x, int pieces) -> (Tensor, Tensor)");
  m.def("maxout_backward(Tensor grad_y, Tensor mask, int pieces) -> Tensor");
  // Linear layer on a batch of rows (torch's F.linear on 2-D input): y = x weight^T + bias.
  m.set_python_module("zoo.ops.linear");
  m.def("linear(Tensor x, Tensor weight, Tensor? bias=None) -> Tensor");
  m.def(
      "linear_backward(Tensor grad_y, Tensor x, Tensor weight, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
}
