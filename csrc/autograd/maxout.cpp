// Autograd for zoo::maxout and zoo::maxout_with_mask: the forward runs the device kernel below autograd and
// keeps only the mask (one byte per input value; torch's amax keeps the input and the output), the backward
// calls zoo::maxout_backward. When no gradient is needed, maxout runs the kernel that writes no mask.
#include "ops.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

namespace zoo::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class Maxout : public torch::autograd::Function<Maxout> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, int64_t pieces) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [y, mask] = ops::maxout_with_mask(x, pieces);
    ctx->save_for_backward({mask});
    ctx->mark_non_differentiable({mask});
    ctx->set_materialize_grads(false);  // no zero-filled gradient for the mask (or an unused y)
    ctx->saved_data["pieces"] = pieces;
    return {y, mask};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const int64_t pieces = ctx->saved_data["pieces"].toInt();
    at::Tensor dx;
    if (grads[0].defined() && at::GradMode::is_enabled()) {
      // create_graph: grad / count * mask, amax's backward, by torch's differentiable ops.
      const at::Tensor mask = saved[0].unflatten(1, {-1, pieces});
      dx = grads[0].unsqueeze(2).div(mask.sum(2, /*keepdim=*/true)).mul(mask).flatten(1, 2);
    } else if (grads[0].defined()) {
      dx = ops::maxout_backward(grads[0], saved[0], pieces);
    }
    return {dx, at::Tensor()};
  }
};

at::Tensor maxout(const at::Tensor& x, int64_t pieces) {
  if (!torch::autograd::compute_requires_grad(x)) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::maxout(x, pieces);
  }
  return Maxout::apply(x, pieces)[0];
}

std::tuple<at::Tensor, at::Tensor> maxout_with_mask(const at::Tensor& x, int64_t pieces) {
  if (!torch::autograd::compute_requires_grad(x)) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::maxout_with_mask(x, pieces);
  }
  const variable_list outputs = Maxout::apply(x, pieces);
  return {outputs[0], outputs[1]};
}

}  // namespace
}  // namespace zoo::autograd

TORCH_LIBRARY_IMPL(zoo, Autograd, m) {
  m.impl("maxout", &zoo::autograd::maxout);
  m.impl("maxout_with_mask", &zoo::autograd::maxout_with_mask);
}
