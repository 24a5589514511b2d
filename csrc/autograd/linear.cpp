// Autograd for zoo::linear: the forward runs the device kernel below autograd and keeps x and
// weight (as torch's linear does), the backward calls zoo::linear_backward for just the
// gradients that are needed (torch's products under create_graph). Without any input requiring
// a gradient the kernel runs without an autograd node.
#include "linear_aten.h"
#include "ops.h"

#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include <array>

namespace zoo::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class Linear : public torch::autograd::Function<Linear> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    at::Tensor y = ops::linear(x, weight, bias);
    ctx->save_for_backward({x, weight});
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    return {y};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    // needs_input_grad counts tensor inputs only: bias is the third when it was given.
    const std::array<bool, 3> mask = {ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                      ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)};
    // Under create_graph (grad mode on in a backward) the gradients are built from torch's differentiable
    // products, so that a second derivative is right; zoo::linear_backward has no derivative of its own.
    auto [dx, dweight, dbias] = at::GradMode::is_enabled()
                                    ? linear_aten::backward(grads[0], saved[0], saved[1], mask)
                                    : ops::linear_backward(grads[0], saved[0], saved[1], mask);
    return {mask[0] ? dx : at::Tensor(), mask[1] ? dweight : at::Tensor(), mask[2] ? dbias : at::Tensor()};
  }
};

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  if (!torch::autograd::compute_requires_grad(x, weight, bias)) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::linear(x, weight, bias);
  }
  return Linear::apply(x, weight, bias)[0];
}

}  // namespace
}  // namespace zoo::autograd

TORCH_LIBRARY_IMPL(zoo, Autograd, m) { m.impl("linear", &zoo::autograd::linear); }
