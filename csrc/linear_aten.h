// The linear layer by torch's own matrix products (at::addmm / at::mm: MKL or OpenBLAS on
// the CPU, cuBLAS on CUDA): zoo::linear's kernel wherever zoo has no faster product of its
// own (float64, CPUs where MKL runs its best code, CUDA, empty products). Arguments checked
// by the caller (checks::check_linear*).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <tuple>

namespace zoo::linear_aten {

// y = x weight^T + bias.
inline at::Tensor forward(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  if (bias.has_value() && bias->defined()) return at::addmm(*bias, x, weight.t());
  return at::mm(x, weight.t());
}

// (dx, dweight, dbias) = (grad_y weight, grad_y^T x, column sums of grad_y), those output_mask asks for.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                               const at::Tensor& weight,
                                                               std::array<bool, 3> output_mask) {
  const auto none = [&] { return at::empty({0}, x.options()); };
  return {output_mask[0] ? at::mm(grad_y, weight) : none(), output_mask[1] ? at::mm(grad_y.t(), x) : none(),
          output_mask[2] ? grad_y.sum(0) : none()};
}

}  // namespace zoo::linear_aten
