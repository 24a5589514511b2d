// What the ops return for an empty batch, where no kernel needs to run: the
// same as torch (empty outputs, zero parameter gradients). Built from ATen
// factory functions, so one implementation serves every device.
#pragma once

#include "conv2d_geometry.h"

#include <ATen/ATen.h>

#include <array>
#include <limits>
#include <tuple>

namespace zoo::empty_batch {

// Batch statistics of no values are undefined: NaN, never used to update running statistics.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_train(const at::Tensor& x) {
  const auto nan = [&] { return at::full({x.size(1)}, std::numeric_limits<double>::quiet_NaN(), x.options()); };
  return {at::empty_like(x), nan(), nan(), nan()};
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_backward(const at::Tensor& x) {
  return {at::empty_like(x), at::zeros({x.size(1)}, x.options()), at::zeros({x.size(1)}, x.options())};
}

// The statistics of no values as a (count 0, mean 0, M2 0) summary: the identity of Chan's merge.
inline std::tuple<at::Tensor, at::Tensor> batch_norm_stats(const at::Tensor& x) {
  return {at::zeros({x.size(1)}, x.options()), at::zeros({x.size(1)}, x.options())};
}

inline at::Tensor conv2d(const at::Tensor& x, const Conv2dGeometry& g) {
  return at::empty({0, g.Cout, g.Ho, g.Wo}, x.options());
}

// Gradients asked for in output_mask (the others empty, as for a full batch).
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward(const at::Tensor& x, const at::Tensor& weight,
                                                                      std::array<bool, 3> output_mask) {
  const at::Tensor none = at::empty({0}, x.options());
  return {output_mask[0] ? at::empty(x.sizes(), x.options()) : none,
          output_mask[1] ? at::zeros(weight.sizes(), weight.options()) : none,
          output_mask[2] ? at::zeros({weight.size(0)}, x.options()) : none};
}

}  // namespace zoo::empty_batch
