// Autograd for zoo::conv2d: the forward runs the device kernel below
// autograd, the backward calls zoo::conv2d_backward for just the gradients
// that are needed. When no gradient is needed (no_grad, or no input requiring
// one) the kernel runs without an autograd node, as torch's own ops do.
#include "ops.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include <vector>

namespace zoo::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class Conv2d : public torch::autograd::Function<Conv2d> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                               at::IntArrayRef padding, at::IntArrayRef dilation) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    at::Tensor y = ops::conv2d(x, weight, bias, stride, padding, dilation);
    ctx->save_for_backward({x, weight});
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    ctx->saved_data["stride"] = stride.vec();
    ctx->saved_data["padding"] = padding.vec();
    ctx->saved_data["dilation"] = dilation.vec();
    return {y};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    // needs_input_grad counts tensor inputs only: bias is the third when it was given.
    const std::array<bool, 3> mask = {ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                      ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)};
    const std::vector<int64_t> stride = ctx->saved_data["stride"].toIntVector();
    const std::vector<int64_t> padding = ctx->saved_data["padding"].toIntVector();
    const std::vector<int64_t> dilation = ctx->saved_data["dilation"].toIntVector();
    // Under create_graph (grad mode on in a backward), torch's differentiable convolution_backward, so that
    // second derivatives are right; zoo::conv2d_backward has no derivative of its own.
    const std::vector<int64_t> bias_sizes = {saved[1].size(0)};
    auto [dx, dweight, dbias] =
        at::GradMode::is_enabled()
            ? at::convolution_backward(grads[0], saved[0], saved[1], bias_sizes, stride, padding, dilation,
                                       /*transposed=*/false, /*output_padding=*/{0, 0}, /*groups=*/1, mask)
            : ops::conv2d_backward(grads[0], saved[0], saved[1], stride, padding, dilation, mask);
    return {mask[0] ? dx : at::Tensor(), mask[1] ? dweight : at::Tensor(), mask[2] ? dbias : at::Tensor(),
            at::Tensor(),                at::Tensor(),                     at::Tensor()};
  }
};

at::Tensor conv2d(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                  at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  if (!torch::autograd::compute_requires_grad(x, weight, bias)) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::conv2d(x, weight, bias, stride, padding, dilation);
  }
  return Conv2d::apply(x, weight, bias, stride, padding, dilation)[0];
}

}  // namespace
}  // namespace zoo::autograd

TORCH_LIBRARY_IMPL(zoo, Autograd, m) { m.impl("conv2d", &zoo::autograd::conv2d); }
