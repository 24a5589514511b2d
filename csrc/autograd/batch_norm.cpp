// Autograd for zoo::batch_norm_train and zoo::batch_norm_eval: the forward
// runs the device kernel below autograd, the backward calls
// zoo::batch_norm_backward (so both run on the input's device). The batch
// statistics are outputs without gradients; running statistics are buffers,
// not parameters (updated in place by the training kernel), so no gradient
// flows into them either. When no gradient is needed (no_grad, or no input
// requiring one) the kernel runs without an autograd node, as torch's own ops do.
// A fused activation (activation.h) saves nothing more in training than the bias,
// from which the backward recomputes the pre-activation; in eval mode with a gradient
// (rare: a frozen model differentiated) the activation is torch's own op after batch norm's. Under
// create_graph (grad mode on in a backward) the gradients come from torch's differentiable
// native_batch_norm_backward (and activation backward), so that second derivatives are right.
#include "checks.h"
#include "ops.h"
#include "autograd/torch_activation.h"

#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

namespace zoo::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The training kernel, run below autograd. It writes the running buffers in place below the
// view/in-place key: their versions are bumped as their own in-place ops would, so autograd
// notices any use of their old values.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> train_below_autograd(
    const at::Tensor& x, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& running_mean, const std::optional<at::Tensor>& running_var, double momentum,
    double eps, c10::string_view activation, double alpha) {
  auto out = [&] {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::batch_norm_train(x, weight, bias, running_mean, running_var, momentum, eps, activation, alpha);
  }();
  for (const auto& buffer : {running_mean, running_var})
    if (buffer.has_value() && buffer->defined()) buffer->unsafeGetTensorImpl()->bump_version();
  return out;
}

// The gradient of an optional input: undefined when the input was not given.
at::Tensor if_given(const at::Tensor& grad, bool given) { return given ? grad : at::Tensor(); }

// Training batch norm's gradients by torch's differentiable ops (for create_graph): the fused
// activation's pre-activation is recomputed by native_batch_norm, so its gradient is a function
// of x, weight and bias too.
std::tuple<at::Tensor, at::Tensor, at::Tensor> create_graph_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
    const at::Tensor& mean, const at::Tensor& invstd, bool has_bias, double eps, c10::string_view activation,
    double alpha) {
  at::Tensor grad_z = grad_y;
  if (activation != "none") {
    const at::Tensor z = std::get<0>(at::native_batch_norm(x, weight, bias, {}, {}, true, 0.0, eps));
    grad_z = torch_activation_backward(grad_y, z, activation, alpha);
  }
  return at::native_batch_norm_backward(grad_z, x, weight, {}, {}, mean, invstd, true, eps,
                                        {true, weight.defined(), has_bias});
}

class BatchNormTrain : public torch::autograd::Function<BatchNormTrain> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const std::optional<at::Tensor>& weight,
                               const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& running_mean,
                               const std::optional<at::Tensor>& running_var, double momentum, double eps,
                               c10::string_view activation, double alpha) {
    auto [y, mean, invstd, var] =
        train_below_autograd(x, weight, bias, running_mean, running_var, momentum, eps, activation, alpha);
    const at::Tensor w = weight.value_or(at::Tensor());
    const bool fused = activation != "none";
    const at::Tensor b = fused ? bias.value_or(at::Tensor()) : at::Tensor();  // only the activation needs it
    ctx->save_for_backward({x, w, mean, invstd, b});
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    ctx->saved_data["activation"] = std::string(activation);
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["eps"] = eps;
    ctx->mark_non_differentiable({mean, invstd, var});
    return {y, mean, invstd, var};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& weight = saved[1];
    const at::Tensor& bias = saved[4];
    const std::string& activation = ctx->saved_data["activation"].toStringRef();
    const double alpha = ctx->saved_data["alpha"].toDouble();
    auto [dx, dweight, dbias] =
        at::GradMode::is_enabled()
            ? create_graph_backward(grads[0], saved[0], weight, bias, saved[2], saved[3],
                                    ctx->saved_data["has_bias"].toBool(), ctx->saved_data["eps"].toDouble(),
                                    activation, alpha)
            : ops::batch_norm_backward(grads[0], saved[0], weight, saved[2], saved[3], true,
                                       bias.defined() ? std::optional(bias) : std::nullopt, activation, alpha);
    return {dx,           if_given(dweight, weight.defined()), if_given(dbias, ctx->saved_data["has_bias"].toBool()),
            at::Tensor(), at::Tensor(),                        at::Tensor(),
            at::Tensor(), at::Tensor(),                        at::Tensor()};
  }
};

class BatchNormEval : public torch::autograd::Function<BatchNormEval> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const std::optional<at::Tensor>& weight,
                               const std::optional<at::Tensor>& bias, const at::Tensor& running_mean,
                               const at::Tensor& running_var, double eps) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    at::Tensor y = ops::batch_norm_eval(x, weight, bias, running_mean, running_var, eps, "none", 0.0);
    ctx->save_for_backward({x, weight.value_or(at::Tensor()), running_mean, running_var});
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    ctx->saved_data["eps"] = eps;
    return {y};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& weight = saved[1];
    const double eps = ctx->saved_data["eps"].toDouble();
    auto [dx, dweight, dbias] =
        at::GradMode::is_enabled()  // create_graph: torch's differentiable backward
            ? at::native_batch_norm_backward(grads[0], saved[0], weight, saved[2], saved[3], {}, {}, false, eps,
                                             {true, weight.defined(), ctx->saved_data["has_bias"].toBool()})
            : ops::batch_norm_backward(grads[0], saved[0], weight, saved[2], saved[3].add(eps).rsqrt(), false,
                                       std::nullopt, "none", 0.0);
    return {dx,           if_given(dweight, weight.defined()), if_given(dbias, ctx->saved_data["has_bias"].toBool()),
            at::Tensor(), at::Tensor(),                        at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_train(
    const at::Tensor& x, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& running_mean, const std::optional<at::Tensor>& running_var, double momentum,
    double eps, c10::string_view activation, double alpha) {
  if (!torch::autograd::compute_requires_grad(x, weight, bias)) {
    return train_below_autograd(x, weight, bias, running_mean, running_var, momentum, eps, activation, alpha);
  }
  const variable_list out =
      BatchNormTrain::apply(x, weight, bias, running_mean, running_var, momentum, eps, activation, alpha);
  return {out[0], out[1], out[2], out[3]};
}

at::Tensor batch_norm_eval(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const at::Tensor& running_mean,
                           const at::Tensor& running_var, double eps, c10::string_view activation, double alpha) {
  if (!torch::autograd::compute_requires_grad(x, weight, bias)) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return ops::batch_norm_eval(x, weight, bias, running_mean, running_var, eps, activation, alpha);
  }
  const at::Tensor y = BatchNormEval::apply(x, weight, bias, running_mean, running_var, eps)[0];
  return torch_activation(y, activation, alpha);
}

}  // namespace
}  // namespace zoo::autograd

TORCH_LIBRARY_IMPL(zoo, Autograd, m) {
  m.impl("batch_norm_train", &zoo::autograd::batch_norm_train);
  m.impl("batch_norm_eval", &zoo::autograd::batch_norm_eval);
}
