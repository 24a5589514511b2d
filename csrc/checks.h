// Argument checks shared by the CPU and CUDA host code, so that both devices
// refuse the same bad input with the same Python exception (ValueError or
// TypeError) and message. The ops' Python entry points check first; these
// guard direct calls of torch.ops.zoo.* and zoo._C. Device and dtype support
// differ per device and are checked where the kernels are.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace zoo::checks {

// `t` (named `name`) has x's dtype and device.
inline void check_like_input(const char* op, const char* name, const at::Tensor& t, const at::Tensor& x) {
  TORCH_CHECK_TYPE(t.scalar_type() == x.scalar_type(), op, ": ", name, " has dtype ", t.scalar_type(),
                   " but x has dtype ", x.scalar_type());
  TORCH_CHECK_VALUE(t.device() == x.device(), op, ": ", name, " is on ", t.device(), " but x is on ", x.device());
}

// ---------------------------------------------------------------- batch norm

constexpr const char* kBatchNorm = "zoo batch_norm";

// x is (N, C), (N, C, L) or (N, C, H, W) and not empty.
inline void check_bn_input(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.dim() >= 2 && x.dim() <= 4, kBatchNorm, ": expected a 2-D, 3-D or 4-D input, got ", x.dim(),
                    "-D");
  TORCH_CHECK_VALUE(x.numel() > 0, kBatchNorm, ": empty input of shape ", x.sizes());
}

// Training normalises by batch statistics, which need two or more values per channel.
inline void check_bn_train_count(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.numel() / x.size(1) > 1, kBatchNorm,
                    ": expected more than 1 value per channel when training, got input size ", x.sizes());
}

inline void check_bn_eps(double eps) {
  TORCH_CHECK_VALUE(eps >= 0, kBatchNorm, ": eps must be non-negative, got ", eps);
}

// A per-channel tensor (weight, bias, running or saved statistics): shape (C), x's dtype and device.
inline void check_bn_channel_vector(const at::Tensor& t, const at::Tensor& x, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == x.size(1), kBatchNorm, ": ", name, " must have shape (", x.size(1),
                    "), got ", t.sizes());
  check_like_input(kBatchNorm, name, t, x);
}

inline void check_bn_grad(const at::Tensor& grad_y, const at::Tensor& x) {
  TORCH_CHECK_VALUE(grad_y.sizes() == x.sizes(), kBatchNorm, ": grad_y has shape ", grad_y.sizes(),
                    " but x has shape ", x.sizes());
  check_like_input(kBatchNorm, "grad_y", grad_y, x);
}

// ---------------------------------------------------------------- conv2d

constexpr const char* kConv2d = "zoo conv2d";

inline void check_conv2d_pair(const std::vector<int64_t>& v, const char* name) {
  TORCH_CHECK_VALUE(v.size() == 2, kConv2d, ": ", name, " must have 2 values (height, width), got ", v.size());
}

// Output height and width of a checked convolution.
struct ConvOutputSize {
  int64_t Ho, Wo;
};

// x (N, Cin, H, W) and weight (Cout, Cin, kh, kw), both non-empty with the same dtype
// and device; stride, padding and dilation of 2 values; the padded input at least as
// large as the dilated kernel. Returns the output size.
inline ConvOutputSize check_conv2d(const at::Tensor& x, const at::Tensor& weight, const std::vector<int64_t>& stride,
                                   const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation) {
  check_like_input(kConv2d, "weight", weight, x);
  TORCH_CHECK_VALUE(x.dim() == 4, kConv2d, ": expected a 4-D input (N, C, H, W), got ", x.dim(), "-D");
  TORCH_CHECK_VALUE(weight.dim() == 4, kConv2d, ": expected a 4-D weight (Cout, Cin, kh, kw), got ", weight.dim(),
                    "-D");
  TORCH_CHECK_VALUE(weight.size(1) == x.size(1), kConv2d, ": weight expects ", weight.size(1),
                    " input channels but x has ", x.size(1));
  TORCH_CHECK_VALUE(x.numel() > 0 && weight.numel() > 0, kConv2d, ": empty input ", x.sizes(), " or weight ",
                    weight.sizes());
  check_conv2d_pair(stride, "stride");
  check_conv2d_pair(padding, "padding");
  check_conv2d_pair(dilation, "dilation");
  for (int d = 0; d < 2; ++d) {
    TORCH_CHECK_VALUE(stride[d] > 0, kConv2d, ": stride must be positive, got ", stride);
    TORCH_CHECK_VALUE(padding[d] >= 0, kConv2d, ": padding must be non-negative, got ", padding);
    TORCH_CHECK_VALUE(dilation[d] > 0, kConv2d, ": dilation must be positive, got ", dilation);
  }
  const int64_t padded_h = x.size(2) + 2 * padding[0], padded_w = x.size(3) + 2 * padding[1];
  const int64_t span_h = dilation[0] * (weight.size(2) - 1) + 1, span_w = dilation[1] * (weight.size(3) - 1) + 1;
  TORCH_CHECK_VALUE(padded_h >= span_h && padded_w >= span_w, kConv2d, ": padded input ", padded_h, "x", padded_w,
                    " is smaller than the dilated kernel ", span_h, "x", span_w);
  return {(padded_h - span_h) / stride[0] + 1, (padded_w - span_w) / stride[1] + 1};
}

inline void check_conv2d_bias(const std::optional<at::Tensor>& bias, const at::Tensor& x, int64_t Cout) {
  if (!bias.has_value() || !bias->defined()) return;
  TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == Cout, kConv2d, ": bias must have shape (", Cout, "), got ",
                    bias->sizes());
  check_like_input(kConv2d, "bias", *bias, x);
}

inline void check_conv2d_grad(const at::Tensor& grad_y, const at::Tensor& x, int64_t Cout, ConvOutputSize out) {
  TORCH_CHECK_VALUE(grad_y.dim() == 4 && grad_y.size(0) == x.size(0) && grad_y.size(1) == Cout &&
                        grad_y.size(2) == out.Ho && grad_y.size(3) == out.Wo,
                    kConv2d, ": grad_y has shape ", grad_y.sizes(), " but the output has shape (", x.size(0), ", ",
                    Cout, ", ", out.Ho, ", ", out.Wo, ")");
  check_like_input(kConv2d, "grad_y", grad_y, x);
}

}  // namespace zoo::checks
