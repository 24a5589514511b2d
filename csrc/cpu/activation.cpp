// CPU activations (zoo::activation, zoo::activation_backward): activation.h's formulas over a dense
// tensor, element by element. torch's own ELU is compute-bound on this kind of machine (its exp runs
// at about a third of memory speed); with cpu/exp.h's vectorised expm1 this pass runs near memory speed.
#include "activation.h"
#include "checks.h"
#include "cpu/memory.h"
#include "cpu/parallel.h"
#include "cpu/streaming.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstdint>
#include <type_traits>

namespace zoo::cpu {
namespace {

void check_device(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.device().is_cpu(), "zoo activation (CPU kernel): x is on ", x.device());
}

// The policy by value and copied into each task: read through a reference or a capture, its
// parameter would be reloaded every iteration (the stores might alias it) and the loop not vectorised.
template <typename Act, typename scalar_t>
void forward_kernel(Act act, const scalar_t* x, scalar_t* y, int64_t n) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (writes_streaming(n * static_cast<int64_t>(sizeof(float)))) {
      at::parallel_for(0, n, kGrainElements, [=](int64_t begin, int64_t end) {
        const Act f = act;
        const float* xb = x + begin;
        stream_run(y + begin, end - begin, [=](int64_t i) { return f(xb[i]); },
                   [=](int64_t i) { return __m512(f(Float16(_mm512_loadu_ps(xb + i)))); });
        _mm_sfence();
      });
      return;
    }
  }
#endif
  at::parallel_for(0, n, kGrainElements, [=](int64_t begin, int64_t end) {
    const Act f = act;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) y[i] = f(x[i]);
  });
}

template <typename Act, typename scalar_t>
void backward_kernel(Act act, const scalar_t* dy, const scalar_t* x, scalar_t* dx, int64_t n) {
  at::parallel_for(0, n, kGrainElements, [=](int64_t begin, int64_t end) {
    const Act f = act;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) dx[i] = f.grad(dy[i], x[i]);
  });
}

at::Tensor activation_forward(const at::Tensor& x_in, c10::string_view name, double alpha) {
  check_device(x_in);
  const activation::Activation a = checks::check_activation(x_in, name, alpha);
  const at::Tensor x = dense_layout(x_in);
  at::Tensor y = empty_output_like(x);
  if (x.numel() == 0) return y;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_activation", [&] {
    activation::dispatch<scalar_t>(a, [&](auto act) {
      forward_kernel(act, x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), x.numel());
    });
  });
  return y;
}

at::Tensor activation_backward(const at::Tensor& grad_y, const at::Tensor& x_in, c10::string_view name,
                               double alpha) {
  check_device(x_in);
  const activation::Activation a = checks::check_activation_backward(grad_y, x_in, name, alpha);
  const at::Tensor x = dense_layout(x_in);
  const at::Tensor dy = in_layout_of(grad_y, x);
  at::Tensor dx = empty_output_like(x);
  if (x.numel() == 0) return dx;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_activation_backward", [&] {
    activation::dispatch<scalar_t>(a, [&](auto act) {
      backward_kernel(act, dy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                      dx.mutable_data_ptr<scalar_t>(), x.numel());
    });
  });
  return dx;
}

}  // namespace
}  // namespace zoo::cpu

TORCH_LIBRARY_IMPL(zoo, CPU, m) {
  m.impl("activation", &zoo::cpu::activation_forward);
  m.impl("activation_backward", &zoo::cpu::activation_backward);
}
