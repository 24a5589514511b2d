// Autograd for zoo::dropout. Dropout is linear in x with a mask fixed by the seed, so its
// gradient is the same op on the incoming gradient with the same seed: nothing but the seed
// is saved (no mask tensor), and double backward follows by the same rule.
#include "ops.h"

#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

namespace zoo::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class Dropout : public torch::autograd::Function<Dropout> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, double p, const at::Tensor& seed) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward({seed});
    ctx->saved_data["p"] = p;
    ctx->set_materialize_grads(false);
    return ops::dropout(x, p, seed);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    at::Tensor dx;
    if (grads[0].defined()) dx = ops::dropout(grads[0], ctx->saved_data["p"].toDouble(), ctx->get_saved_variables()[0]);
    return {dx, at::Tensor(), at::Tensor()};
  }
};

at::Tensor dropout(const at::Tensor& x, double p, const at::Tensor& seed) {
  if (!torch::autograd::compute_requires_grad(x)) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::dropout(x, p, seed);
  }
  return Dropout::apply(x, p, seed);
}

}  // namespace
}  // namespace zoo::autograd

TORCH_LIBRARY_IMPL(zoo, Autograd, m) { m.impl("dropout", &zoo::autograd::dropout); }
