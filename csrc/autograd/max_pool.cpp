// Autograd for zoo::max_pool2d and zoo::max_pool2d_with_indices: the forward
// runs the device kernel below autograd and keeps the indices, the backward
// calls zoo::max_pool2d_backward (torch's scatter_add under create_graph). When no
// gradient is needed, max_pool2d runs the kernel that writes no indices, without an autograd node.
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

// dx from the indices by torch's differentiable scatter_add (for create_graph: second derivatives
// right). A window of no input value (ceil mode with dilation) points past its plane and adds nothing.
at::Tensor create_graph_backward(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& indices) {
  const int64_t plane = x.size(2) * x.size(3);
  const at::Tensor index = indices.flatten(2), grad = grad_y.flatten(2);
  const at::Tensor inside = index.lt(plane);
  return at::zeros({x.size(0), x.size(1), plane}, grad_y.options())
      .scatter_add(2, at::where(inside, index, 0), at::where(inside, grad, 0))
      .view(x.sizes());
}

class MaxPool2d : public torch::autograd::Function<MaxPool2d> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, at::IntArrayRef kernel_size,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                               bool ceil_mode) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [y, indices] = ops::max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode);
    ctx->save_for_backward({x, indices});
    ctx->mark_non_differentiable({indices});
    ctx->set_materialize_grads(false);  // no zero-filled gradient for the indices (or an unused y)
    ctx->saved_data["kernel_size"] = kernel_size.vec();
    ctx->saved_data["stride"] = stride.vec();
    ctx->saved_data["padding"] = padding.vec();
    ctx->saved_data["dilation"] = dilation.vec();
    ctx->saved_data["ceil_mode"] = ceil_mode;
    return {y, indices};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    at::Tensor dx;
    if (grads[0].defined() && at::GradMode::is_enabled())
      dx = create_graph_backward(grads[0], saved[0], saved[1]);
    else if (grads[0].defined())
      dx = ops::max_pool2d_backward(grads[0], saved[0], saved[1], ctx->saved_data["kernel_size"].toIntVector(),
                                    ctx->saved_data["stride"].toIntVector(), ctx->saved_data["padding"].toIntVector(),
                                    ctx->saved_data["dilation"].toIntVector(), ctx->saved_data["ceil_mode"].toBool());
    return {dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor max_pool2d(const at::Tensor& x, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  if (!torch::autograd::compute_requires_grad(x)) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode);
  }
  return MaxPool2d::apply(x, kernel_size, stride, padding, dilation, ceil_mode)[0];
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices(const at::Tensor& x, at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride, at::IntArrayRef padding,
                                                           at::IntArrayRef dilation, bool ceil_mode) {
  if (!torch::autograd::compute_requires_grad(x)) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode);
  }
  const variable_list outputs = MaxPool2d::apply(x, kernel_size, stride, padding, dilation, ceil_mode);
  return {outputs[0], outputs[1]};
}

}  // namespace
}  // namespace zoo::autograd

TORCH_LIBRARY_IMPL(zoo, Autograd, m) {
  m.impl("max_pool2d", &zoo::autograd::max_pool2d);
  m.impl("max_pool2d_with_indices", &zoo::autograd::max_pool2d_with_indices);
}
