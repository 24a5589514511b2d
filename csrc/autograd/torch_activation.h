// A fused activation (activation.h) as torch's own differentiable ops: batch norm's eval-mode
// activation with a gradient, and the create_graph backwards of batch norm and zoo::activation.
#pragma once

#include "checks.h"

#include <ATen/ATen.h>

namespace zoo::autograd {

// `activation` of y by torch's op ("none": y itself).
inline at::Tensor torch_activation(const at::Tensor& y, c10::string_view activation, double alpha) {
  switch (checks::parse_activation("zoo", "activation", activation, alpha).kind) {
    case activation::Kind::kNone:
      return y;
    case activation::Kind::kReLU:
      return at::relu(y);
    case activation::Kind::kLeakyReLU:
      return at::leaky_relu(y, alpha);
    case activation::Kind::kELU:
      return at::elu(y, alpha);
  }
  return y;
}

// The gradient of `activation` at the pre-activation z for output gradient dy, by torch's
// backward ops, which are differentiable in dy and z ("none": dy).
inline at::Tensor torch_activation_backward(const at::Tensor& dy, const at::Tensor& z, c10::string_view activation,
                                            double alpha) {
  switch (checks::parse_activation("zoo", "activation", activation, alpha).kind) {
    case activation::Kind::kNone:
      return dy;
    case activation::Kind::kReLU:
      return at::threshold_backward(dy, z, 0);
    case activation::Kind::kLeakyReLU:
      return at::leaky_relu_backward(dy, z, alpha, /*self_is_result=*/false);
    case activation::Kind::kELU:
      return at::elu_backward(dy, alpha, 1, 1, /*is_result=*/false, z);
  }
  return dy;
}

}  // namespace zoo::autograd
