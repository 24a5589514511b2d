// Autograd for zoo::activation: the forward runs the device kernel below autograd and keeps x (as
// torch's leaky_relu and elu do), the backward calls zoo::activation_backward.
#include "ops.h"
#include "autograd/torch_activation.h"

#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include <string>

namespace zoo::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class Activation : public torch::autograd::Function<Activation> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, c10::string_view activation,
                               double alpha) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    at::Tensor y = ops::activation(x, activation, alpha);
    ctx->save_for_backward({x});
    ctx->saved_data["activation"] = std::string(activation);
    ctx->saved_data["alpha"] = alpha;
    return {y};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const std::string& activation = ctx->saved_data["activation"].toStringRef();
    const double alpha = ctx->saved_data["alpha"].toDouble();
    // Under create_graph (grad mode on in a backward), torch's differentiable backward ops.
    at::Tensor dx = at::GradMode::is_enabled() ? torch_activation_backward(grads[0], saved[0], activation, alpha)
                                               : ops::activation_backward(grads[0], saved[0], activation, alpha);
    return {dx, at::Tensor(), at::Tensor()};
  }
};

at::Tensor activation(const at::Tensor& x, c10::string_view activation, double alpha) {
  if (!torch::autograd::compute_requires_grad(x)) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::activation(x, activation, alpha);
  }
  return Activation::apply(x, activation, alpha)[0];
}

}  // namespace
}  // namespace zoo::autograd

TORCH_LIBRARY_IMPL(zoo, Autograd, m) { m.impl("activation", &zoo::autograd::activation); }
