// The running statistics update of training batch norm, shared by the CPU and CUDA
// kernels: running = lerp(running, batch, momentum) = (1 - momentum) running +
// momentum batch, in place, for each running buffer given (the unbiased batch
// variance goes into running_var), as torch.nn.functional.batch_norm does.
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace zoo {

inline void update_running_stats(const std::optional<at::Tensor>& running_mean,
                                 const std::optional<at::Tensor>& running_var, const at::Tensor& mean,
                                 const at::Tensor& var_unbiased, double momentum) {
  if (running_mean.has_value() && running_mean->defined()) running_mean->lerp_(mean, momentum);
  if (running_var.has_value() && running_var->defined()) running_var->lerp_(var_unbiased, momentum);
}

}  // namespace zoo
