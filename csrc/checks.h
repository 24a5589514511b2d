// Argument checks shared by the CPU and CUDA kernels: both devices refuse the
// same bad input with the same Python exception (ValueError or TypeError) and
// message. They are the only checks of shapes and values: zoo's Python
// functions only normalise arguments (ints to pairs, unbatched input) and
// check what chooses a kernel (tensor, layout, device).
#pragma once

#include "activation.h"
#include "conv2d_geometry.h"
#include "pool2d_geometry.h"

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <c10/util/safe_numerics.h>

#include <cstdint>
#include <optional>
#include <string>

namespace zoo::checks {

// A dtype as Python names it ("torch.float32"), for messages that reach Python users.
inline std::string dtype_name(at::ScalarType t) { return "torch." + std::string(c10::getDtypeNames(t).first); }

// x is float32 or float64, the dtypes both devices' kernels are built for.
inline void check_dtype(const char* op, const at::Tensor& x) {
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
                   ": expected float32 or float64, got ", dtype_name(x.scalar_type()));
}

// `t` (named `name`) has x's dtype and device.
inline void check_like_input(const char* op, const char* name, const at::Tensor& t, const at::Tensor& x) {
  TORCH_CHECK_TYPE(t.scalar_type() == x.scalar_type(), op, ": ", name, " has dtype ", dtype_name(t.scalar_type()),
                   " but x has dtype ", dtype_name(x.scalar_type()));
  TORCH_CHECK_VALUE(t.device() == x.device(), op, ": ", name, " is on ", t.device(), " but x is on ", x.device());
}

// grad_y (of an element-wise or normalising op) has x's shape, dtype and device.
inline void check_grad_y(const char* op, const at::Tensor& grad_y, const at::Tensor& x) {
  TORCH_CHECK_VALUE(grad_y.sizes() == x.sizes(), op, ": grad_y has shape ", grad_y.sizes(), " but x has shape ",
                    x.sizes());
  check_like_input(op, "grad_y", grad_y, x);
}

// An activation named in an op's arguments (`activation`, `alpha`; activation.h), or a ValueError naming it.
inline activation::Activation parse_activation(const char* op, const char* what, c10::string_view name,
                                               double alpha) {
  using activation::Kind;
  if (name == "none") return {Kind::kNone, alpha};
  if (name == "relu") return {Kind::kReLU, alpha};
  if (name == "leaky_relu") return {Kind::kLeakyReLU, alpha};
  if (name == "elu") return {Kind::kELU, alpha};
  TORCH_CHECK_VALUE(false, op, ": unknown ", what, " '", name, "'; expected 'none', 'relu', 'leaky_relu' or 'elu'");
}

// ---------------------------------------------------------------- activations

constexpr const char* kActivation = "zoo activation";

// x float32/float64 of any shape (empty included); the activation's name known.
inline activation::Activation check_activation(const at::Tensor& x, c10::string_view name, double alpha) {
  check_dtype(kActivation, x);
  return parse_activation(kActivation, "activation", name, alpha);
}

// grad_y has x's shape, dtype and device.
inline activation::Activation check_activation_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                        c10::string_view name, double alpha) {
  const activation::Activation a = check_activation(x, name, alpha);
  check_grad_y(kActivation, grad_y, x);
  return a;
}

// ---------------------------------------------------------------- batch norm
// Each batch-norm op checks its arguments with one call: check_bn_train,
// check_bn_eval or check_bn_backward. An empty batch is valid (as in torch):
// the ops return empty results without running a kernel (empty_batch.h).

constexpr const char* kBatchNorm = "zoo batch_norm";

// x is float32/float64 and (N, C), (N, C, L) or (N, C, H, W).
inline void check_bn_input(const at::Tensor& x) {
  check_dtype(kBatchNorm, x);
  TORCH_CHECK_VALUE(x.dim() >= 2 && x.dim() <= 4, kBatchNorm, ": expected a 2-D, 3-D or 4-D input, got ", x.dim(),
                    "-D");
}

// A per-channel tensor (weight, bias, running or saved statistics): shape (C), x's dtype and device.
inline void check_bn_channel_vector(const at::Tensor& t, const at::Tensor& x, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == x.size(1), kBatchNorm, ": ", name, " must have shape (", x.size(1),
                    "), got ", t.sizes());
  check_like_input(kBatchNorm, name, t, x);
}

inline void check_bn_optional_channel_vector(const std::optional<at::Tensor>& t, const at::Tensor& x,
                                             const char* name) {
  if (t.has_value() && t->defined()) check_bn_channel_vector(*t, x, name);
}

inline void check_bn_train(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& running_mean,
                           const std::optional<at::Tensor>& running_var, double eps) {
  check_bn_input(x);
  // Batch statistics need two or more values per channel (none at all is an empty batch).
  TORCH_CHECK_VALUE(x.numel() == 0 || x.numel() / x.size(1) > 1, kBatchNorm,
                    ": expected more than 1 value per channel when training, got input size ", x.sizes());
  TORCH_CHECK_VALUE(eps > 0, kBatchNorm, ": eps must be positive during training, got ", eps);
  check_bn_optional_channel_vector(weight, x, "weight");
  check_bn_optional_channel_vector(bias, x, "bias");
  check_bn_optional_channel_vector(running_mean, x, "running_mean");
  check_bn_optional_channel_vector(running_var, x, "running_var");
}

inline void check_bn_eval(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                          const std::optional<at::Tensor>& bias, const at::Tensor& running_mean,
                          const at::Tensor& running_var, double eps) {
  check_bn_input(x);
  TORCH_CHECK_VALUE(eps >= 0, kBatchNorm, ": eps must be non-negative, got ", eps);
  check_bn_optional_channel_vector(weight, x, "weight");
  check_bn_optional_channel_vector(bias, x, "bias");
  check_bn_channel_vector(running_mean, x, "running_mean");
  check_bn_channel_vector(running_var, x, "running_var");
}

inline void check_bn_backward(const at::Tensor& grad_y, const at::Tensor& x, const std::optional<at::Tensor>& weight,
                              const at::Tensor& mean, const at::Tensor& invstd) {
  check_bn_input(x);
  check_grad_y(kBatchNorm, grad_y, x);
  check_bn_optional_channel_vector(weight, x, "weight");
  check_bn_channel_vector(mean, x, "mean");
  check_bn_channel_vector(invstd, x, "invstd");
}

// The fused activation of the batch-norm ops (`activation`, `alpha` in their schemas; activation.h).
inline activation::Activation bn_activation(c10::string_view name, double alpha) {
  return parse_activation(kBatchNorm, "fused activation", name, alpha);
}

// batch_norm_backward's fused-activation arguments: the bias recomputes the pre-activation with the
// training forward's own arithmetic, which eval's forward (running statistics) does not share.
inline activation::Activation check_bn_backward_activation(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                                                           bool train, c10::string_view name, double alpha) {
  const activation::Activation fused = bn_activation(name, alpha);
  check_bn_optional_channel_vector(bias, x, "bias");
  TORCH_CHECK_VALUE(fused.kind == activation::Kind::kNone || train, kBatchNorm, ": the fused ", name,
                    "'s backward needs train=True (the training forward's statistics)");
  return fused;
}

// The split batch norm of synchronized (multi-process) training: batch_norm_stats (local
// statistics), batch_norm_backward_reduce (local gradient sums) and batch_norm_backward_elemt
// (dx from sums reduced over every process, whose values per channel number `count`).
inline void check_bn_stats(const at::Tensor& x) { check_bn_input(x); }

inline void check_bn_backward_reduce(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& mean) {
  check_bn_input(x);
  check_grad_y(kBatchNorm, grad_y, x);
  check_bn_channel_vector(mean, x, "mean");
}

inline void check_bn_backward_elemt(const at::Tensor& grad_y, const at::Tensor& x,
                                    const std::optional<at::Tensor>& weight, const at::Tensor& mean,
                                    const at::Tensor& invstd, const at::Tensor& sum_dy, const at::Tensor& sum_dy_xmu,
                                    int64_t count) {
  check_bn_backward(grad_y, x, weight, mean, invstd);
  check_bn_channel_vector(sum_dy, x, "sum_dy");
  check_bn_channel_vector(sum_dy_xmu, x, "sum_dy_xmu");
  // The reduced sums cover this process's values and maybe others': never fewer than x holds.
  const int64_t local = x.size(1) > 0 ? x.numel() / x.size(1) : 0;
  TORCH_CHECK_VALUE(count > 0 && count >= local, kBatchNorm, ": count must be positive and at least the ", local,
                    " values per channel of x, got ", count);
}

// A given optional tensor made contiguous, or an undefined tensor.
inline at::Tensor contiguous_if_given(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? t->contiguous() : at::Tensor();
}

// The data of an optional argument, or nullptr when it is undefined.
template <typename T>
const T* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

// ---------------------------------------------------------------- conv2d

constexpr const char* kConv2d = "zoo conv2d";

inline void check_conv2d_pair(at::IntArrayRef v, const char* name) {
  TORCH_CHECK_VALUE(v.size() == 2, kConv2d, ": ", name, " must have 2 values (height, width), got ", v.size());
}

// a + b and a * b of non-negative sizes, refusing results past int64 (user-given
// padding, dilation and stride may be anything up to 2^63 - 1).
inline int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t out = 0;
  TORCH_CHECK_VALUE(!c10::add_overflows(a, b, &out), kConv2d, ": ", what, " overflows 64-bit sizes");
  return out;
}

inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t out = 0;
  TORCH_CHECK_VALUE(!c10::mul_overflows(a, b, &out), kConv2d, ": ", what, " overflows 64-bit sizes");
  return out;
}

// The geometry of conv2d(x, weight) after checking x (N, C, H, W) and weight (Cout, C, kh, kw):
// float32/float64, the same dtype and device, nothing empty but the batch; stride, padding and dilation of 2 values;
// the padded input at least as large as the dilated kernel; and every size the kernels
// compute from them (padded input, output, column matrix, in bytes) within int64.
inline Conv2dGeometry check_conv2d_geometry(const at::Tensor& x, const at::Tensor& weight, at::IntArrayRef stride,
                                            at::IntArrayRef padding, at::IntArrayRef dilation) {
  check_dtype(kConv2d, x);
  check_like_input(kConv2d, "weight", weight, x);
  TORCH_CHECK_VALUE(x.dim() == 4, kConv2d, ": expected a 4-D input (N, C, H, W), got ", x.dim(), "-D");
  TORCH_CHECK_VALUE(weight.dim() == 4, kConv2d, ": expected a 4-D weight (Cout, Cin, kh, kw), got ", weight.dim(),
                    "-D");
  TORCH_CHECK_VALUE(weight.size(1) == x.size(1), kConv2d, ": weight expects ", weight.size(1),
                    " input channels but x has ", x.size(1));
  // An empty batch is valid (as in torch); no channels, no pixels or no kernel is not.
  TORCH_CHECK_VALUE(x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0 && weight.numel() > 0, kConv2d,
                    ": empty input ", x.sizes(), " or weight ", weight.sizes());
  check_conv2d_pair(stride, "stride");
  check_conv2d_pair(padding, "padding");
  check_conv2d_pair(dilation, "dilation");
  for (int d = 0; d < 2; ++d) {
    TORCH_CHECK_VALUE(stride[d] > 0, kConv2d, ": stride must be positive, got ", stride);
    TORCH_CHECK_VALUE(padding[d] >= 0, kConv2d, ": padding must be non-negative, got ", padding);
    TORCH_CHECK_VALUE(dilation[d] > 0, kConv2d, ": dilation must be positive, got ", dilation);
  }
  Conv2dGeometry g{};
  g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.Cout = weight.size(0), g.kh = weight.size(2), g.kw = weight.size(3);
  g.sh = stride[0], g.sw = stride[1];
  g.ph = padding[0], g.pw = padding[1];
  g.dh = dilation[0], g.dw = dilation[1];
  const int64_t padded_h = checked_add(g.H, checked_mul(2, g.ph, "padding"), "the padded input height");
  const int64_t padded_w = checked_add(g.W, checked_mul(2, g.pw, "padding"), "the padded input width");
  const int64_t span_h = checked_add(checked_mul(g.dh, g.kh - 1, "the dilated kernel height"), 1,
                                     "the dilated kernel height");
  const int64_t span_w = checked_add(checked_mul(g.dw, g.kw - 1, "the dilated kernel width"), 1,
                                     "the dilated kernel width");
  TORCH_CHECK_VALUE(padded_h >= span_h && padded_w >= span_w, kConv2d, ": padded input ", padded_h, "x", padded_w,
                    " is smaller than the dilated kernel ", span_h, "x", span_w, ", so there is no output");
  g.Ho = (padded_h - span_h) / g.sh + 1;
  g.Wo = (padded_w - span_w) / g.sw + 1;
  // Bytes of the largest buffers: the output, a padded image and an image's column matrix.
  // (Checked for an empty batch too: zoo refuses such a geometry whatever the batch.)
  constexpr int64_t kMaxElementBytes = 8;
  const int64_t pixels = checked_mul(g.Ho, g.Wo, "the output size");
  checked_mul(checked_mul(checked_mul(x.size(0), g.Cout, "the output size"), pixels, "the output size"),
              kMaxElementBytes, "the output size");
  checked_mul(checked_mul(checked_mul(g.C, padded_h, "the padded input size"), padded_w, "the padded input size"),
              kMaxElementBytes, "the padded input size");
  checked_mul(checked_mul(g.K(), pixels, "the column matrix size"), kMaxElementBytes, "the column matrix size");
  return g;
}

// Checks the arguments of zoo::conv2d and returns its geometry.
inline Conv2dGeometry check_conv2d(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                                   at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  const Conv2dGeometry g = check_conv2d_geometry(x, weight, stride, padding, dilation);
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == g.Cout, kConv2d, ": bias must have shape (", g.Cout,
                      "), got ", bias->sizes());
    check_like_input(kConv2d, "bias", *bias, x);
  }
  return g;
}

// Checks the arguments of zoo::conv2d_backward and returns the geometry.
inline Conv2dGeometry check_conv2d_backward(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight,
                                            at::IntArrayRef stride, at::IntArrayRef padding,
                                            at::IntArrayRef dilation) {
  const Conv2dGeometry g = check_conv2d_geometry(x, weight, stride, padding, dilation);
  TORCH_CHECK_VALUE(grad_y.dim() == 4 && grad_y.size(0) == x.size(0) && grad_y.size(1) == g.Cout &&
                        grad_y.size(2) == g.Ho && grad_y.size(3) == g.Wo,
                    kConv2d, ": grad_y has shape ", grad_y.sizes(), " but the output has shape (", x.size(0), ", ",
                    g.Cout, ", ", g.Ho, ", ", g.Wo, ")");
  check_like_input(kConv2d, "grad_y", grad_y, x);
  return g;
}

// ---------------------------------------------------------------- max pooling

constexpr const char* kMaxPool2d = "zoo max_pool2d";

// The geometry of max_pool2d(x) after checking what torch's max_pool2d checks: x (N, C, H, W) float32/float64,
// nothing empty but the batch; kernel_size, stride, padding, dilation of 2 values each, kernel, stride and
// dilation positive, padding at most half the kernel; at least one output pixel.
inline Pool2dGeometry check_max_pool2d_geometry(const at::Tensor& x, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                                at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  check_dtype(kMaxPool2d, x);
  TORCH_CHECK_VALUE(x.dim() == 4, kMaxPool2d, ": expected a 4-D input (N, C, H, W), got ", x.dim(), "-D");
  TORCH_CHECK_VALUE(x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0, kMaxPool2d,
                    ": expected non-empty channels, height and width, got input of shape ", x.sizes());
  const char* names[] = {"kernel_size", "stride", "padding", "dilation"};
  const at::IntArrayRef arguments[] = {kernel_size, stride, padding, dilation};
  constexpr int64_t kLimit = int64_t(1) << 31;  // keeps every size computed from them within int64
  for (int a = 0; a < 4; ++a) {
    const char* name = names[a];
    const at::IntArrayRef values = arguments[a];
    TORCH_CHECK_VALUE(values.size() == 2, kMaxPool2d, ": ", name, " must have 2 values (height, width), got ",
                      values.size());
    const bool is_padding = a == 2;
    for (const int64_t v : values)
      TORCH_CHECK_VALUE(v < kLimit && (is_padding ? v >= 0 : v > 0), kMaxPool2d, ": ", name, " must be ",
                        is_padding ? "non-negative" : "positive", " (and below 2^31), got ", values);
  }
  for (int d = 0; d < 2; ++d) {
    const int64_t span = dilation[d] * (kernel_size[d] - 1) + 1;
    TORCH_CHECK_VALUE(2 * padding[d] <= kernel_size[d] && 2 * padding[d] <= span, kMaxPool2d,
                      ": padding must be at most half the kernel size, got padding ", padding, " and kernel_size ",
                      kernel_size);
  }
  Pool2dGeometry g{};
  g.H = x.size(2), g.W = x.size(3);
  g.kh = kernel_size[0], g.kw = kernel_size[1];
  g.sh = stride[0], g.sw = stride[1];
  g.ph = padding[0], g.pw = padding[1];
  g.dh = dilation[0], g.dw = dilation[1];
  g.Ho = pool2d_output_size(g.H, g.kh, g.sh, g.ph, g.dh, ceil_mode);
  g.Wo = pool2d_output_size(g.W, g.kw, g.sw, g.pw, g.dw, ceil_mode);
  TORCH_CHECK_VALUE(g.Ho >= 1 && g.Wo >= 1, kMaxPool2d, ": input of size ", g.H, "x", g.W, " gives an output of ",
                    g.Ho, "x", g.Wo, " (kernel_size ", kernel_size, ", padding ", padding, ", dilation ", dilation,
                    "): too small");
  return g;
}

// Checks the arguments of zoo::max_pool2d_backward and returns the geometry.
inline Pool2dGeometry check_max_pool2d_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                const at::Tensor& indices, at::IntArrayRef kernel_size,
                                                at::IntArrayRef stride, at::IntArrayRef padding,
                                                at::IntArrayRef dilation, bool ceil_mode) {
  const Pool2dGeometry g = check_max_pool2d_geometry(x, kernel_size, stride, padding, dilation, ceil_mode);
  TORCH_CHECK_VALUE(grad_y.dim() == 4 && grad_y.size(0) == x.size(0) && grad_y.size(1) == x.size(1) &&
                        grad_y.size(2) == g.Ho && grad_y.size(3) == g.Wo,
                    kMaxPool2d, ": grad_y has shape ", grad_y.sizes(), " but the output has shape (", x.size(0), ", ",
                    x.size(1), ", ", g.Ho, ", ", g.Wo, ")");
  check_like_input(kMaxPool2d, "grad_y", grad_y, x);
  TORCH_CHECK_VALUE(indices.sizes() == grad_y.sizes(), kMaxPool2d, ": indices has shape ", indices.sizes(),
                    " but grad_y has shape ", grad_y.sizes());
  TORCH_CHECK_TYPE(indices.scalar_type() == at::kLong, kMaxPool2d, ": indices must be torch.int64, got ",
                   dtype_name(indices.scalar_type()));
  TORCH_CHECK_VALUE(indices.device() == x.device(), kMaxPool2d, ": indices is on ", indices.device(), " but x is on ",
                    x.device());
  return g;
}

// ---------------------------------------------------------------- dropout

constexpr const char* kDropout = "zoo dropout";

// x float32/float64 (any shape, empty included); p in [0, 1], refused as torch refuses it; seed a
// one-element int64 tensor on x's device.
inline void check_dropout(const at::Tensor& x, double p, const at::Tensor& seed) {
  check_dtype(kDropout, x);
  TORCH_CHECK_VALUE(p >= 0.0 && p <= 1.0, "dropout probability has to be between 0 and 1, but got ", p);
  TORCH_CHECK_TYPE(seed.scalar_type() == at::kLong, kDropout, ": seed must be torch.int64, got ",
                   dtype_name(seed.scalar_type()));
  TORCH_CHECK_VALUE(seed.numel() == 1, kDropout, ": seed must hold one value, got shape ", seed.sizes());
  TORCH_CHECK_VALUE(seed.device() == x.device(), kDropout, ": seed is on ", seed.device(), " but x is on ",
                    x.device());
}

constexpr const char* kMaxout = "zoo maxout";

// x float32/float64, (N, pieces * C, ...) of rank 2 or more; pieces >= 1.
inline void check_maxout(const at::Tensor& x, int64_t pieces) {
  check_dtype(kMaxout, x);
  TORCH_CHECK_VALUE(x.dim() >= 2, kMaxout, ": expected an input (N, pieces * C, ...) of 2 or more dimensions, got ",
                    x.dim(), "-D");
  TORCH_CHECK_VALUE(pieces >= 1, kMaxout, ": pieces must be at least 1, got ", pieces);
  TORCH_CHECK_VALUE(x.size(1) % pieces == 0, kMaxout, ": dimension 1 of x (", x.size(1),
                    ") must be a multiple of pieces (", pieces, ")");
}

// grad_y (N, C, ...) float32/float64; mask bool (N, pieces * C, ...) on grad_y's device, as maxout_with_mask gives.
inline void check_maxout_backward(const at::Tensor& grad_y, const at::Tensor& mask, int64_t pieces) {
  check_dtype(kMaxout, grad_y);
  TORCH_CHECK_TYPE(mask.scalar_type() == at::kBool, kMaxout, ": mask must be torch.bool, got ",
                   dtype_name(mask.scalar_type()));
  TORCH_CHECK_VALUE(mask.device() == grad_y.device(), kMaxout, ": mask is on ", mask.device(), " but grad_y is on ",
                    grad_y.device());
  TORCH_CHECK_VALUE(grad_y.dim() >= 2 && pieces >= 1 && mask.dim() == grad_y.dim() &&
                        mask.size(1) == grad_y.size(1) * pieces,
                    kMaxout, ": mask of shape ", mask.sizes(), " does not fit grad_y of shape ", grad_y.sizes(),
                    " with ", pieces, " pieces");
  for (int64_t d = 0; d < mask.dim(); ++d) {
    TORCH_CHECK_VALUE(d == 1 || mask.size(d) == grad_y.size(d), kMaxout, ": mask of shape ", mask.sizes(),
                      " does not fit grad_y of shape ", grad_y.sizes());
  }
}

// ---------------------------------------------------------------- linear

constexpr const char* kLinear = "zoo linear";

// x (N, in) and weight (out, in) float32/float64 on one device; bias, when given, (out) like x.
inline void check_linear(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  check_dtype(kLinear, x);
  check_like_input(kLinear, "weight", weight, x);
  TORCH_CHECK_VALUE(x.dim() == 2 && weight.dim() == 2, kLinear, ": expected a 2-D x (N, in_features) and weight ",
                    "(out_features, in_features), got x of shape ", x.sizes(), " and weight of shape ",
                    weight.sizes());
  TORCH_CHECK_VALUE(x.size(1) == weight.size(1), kLinear, ": x has ", x.size(1), " features (shape ", x.sizes(),
                    ") but weight of shape ", weight.sizes(), " expects ", weight.size(1));
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == weight.size(0), kLinear, ": bias must have shape (",
                      weight.size(0), "), got ", bias->sizes());
    check_like_input(kLinear, "bias", *bias, x);
  }
}

// check_linear's, and grad_y (N, out) like x.
inline void check_linear_backward(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight) {
  check_linear(x, weight, std::nullopt);
  TORCH_CHECK_VALUE(grad_y.dim() == 2 && grad_y.size(0) == x.size(0) && grad_y.size(1) == weight.size(0), kLinear,
                    ": grad_y has shape ", grad_y.sizes(), " but the output has shape (", x.size(0), ", ",
                    weight.size(0), ")");
  check_like_input(kLinear, "grad_y", grad_y, x);
}

}  // namespace zoo::checks
