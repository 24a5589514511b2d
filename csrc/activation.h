// The activations batch norm can apply in its own pass (zoo.nn.BatchNormReLU*d, BatchNormLeakyReLU*d,
// BatchNormELU*d): their formulas, once for the CPU and CUDA kernels. The backward gets batch norm's
// input, not the activation's output, and recomputes the pre-activation v from it, so each gradient
// is written in terms of v, as torch's own backward of that activation reads its input:
//   relu        f = v < 0 ? 0 : v              f' dy = v <= 0 ? 0 : dy           (torch.relu)
//   leaky_relu  f = v > 0 ? v : v * alpha      f' dy = v > 0 ? dy : dy * alpha   (F.leaky_relu, slope alpha)
//   elu         f = v > 0 ? v : alpha * expm1(v)  f' dy = v > 0 ? dy : dy * alpha * exp(v)   (F.elu)
// NaN in v gives NaN out of every one, as in torch, and the gradients torch's vectorised kernels give
// there (dy, dy * alpha, NaN: each comparison is false for NaN, so the order of the branches matters;
// torch's ELU backward gives dy instead in the scalar loop it runs for the last few values of a tensor).
// The operators work on GCC vectors too
// (cpu/exp.h's Float16), which the CPU's AVX-512 streaming loops use. No torch here: the op
// arguments are parsed and checked in checks.h (bn_activation).
#pragma once

#include "host_device.h"

#if !defined(__CUDACC__)
#include "cpu/exp.h"
#endif

namespace zoo::activation {

enum class Kind { kNone, kReLU, kLeakyReLU, kELU };

// The fused activation an op was asked for, and its parameter (LeakyReLU's negative slope, ELU's
// alpha; unused by the others).
struct Activation {
  Kind kind = Kind::kNone;
  double alpha = 0.0;
};

template <typename scalar_t>
struct None {
  static constexpr bool kIdentity = true;
  template <typename T>
  ZOO_HOST_DEVICE T operator()(T v) const { return v; }
  template <typename T>
  ZOO_HOST_DEVICE T grad(T dy, T) const { return dy; }
};

template <typename scalar_t>
struct ReLU {
  static constexpr bool kIdentity = false;
  template <typename T>
  ZOO_HOST_DEVICE T operator()(T v) const { return v < scalar_t(0) ? T{} : v; }
  template <typename T>
  ZOO_HOST_DEVICE T grad(T dy, T v) const { return v <= scalar_t(0) ? T{} : dy; }  // threshold_backward
};

template <typename scalar_t>
struct LeakyReLU {
  static constexpr bool kIdentity = false;
  scalar_t slope;
  template <typename T>
  ZOO_HOST_DEVICE T operator()(T v) const { return v > scalar_t(0) ? v : v * slope; }
  template <typename T>
  ZOO_HOST_DEVICE T grad(T dy, T v) const { return v > scalar_t(0) ? dy : dy * slope; }
};

template <typename scalar_t>
struct ELU {
  static constexpr bool kIdentity = false;
  scalar_t alpha;
  // Both sides computed, then selected: with the exponential inside a branch GCC keeps the branch
  // (floating-point code may trap, so it is not run speculatively) and the loop is not vectorised.
  template <typename T>
  ZOO_HOST_DEVICE T operator()(T v) const {
    const T negative = alpha * expm1_of(v);
    return v > scalar_t(0) ? v : negative;
  }
  template <typename T>
  ZOO_HOST_DEVICE T grad(T dy, T v) const {
    const T negative = dy * alpha * exp_of(v);
    return v > scalar_t(0) ? dy : negative;
  }

 private:
  // Only v <= 0 is ever selected: CUDA's own functions on the GPU, cpu/exp.h's vectorisable ones on the CPU.
  template <typename T>
  static ZOO_HOST_DEVICE T expm1_of(T v) {
#if defined(__CUDACC__)
    return ::expm1(v);
#else
    return cpu::expm1_nonpositive(v);
#endif
  }
  template <typename T>
  static ZOO_HOST_DEVICE T exp_of(T v) {
#if defined(__CUDACC__)
    return ::exp(v);
#else
    return cpu::exp_nonpositive(v);
#endif
  }
};

// f(policy) with the policy object of `a` in the kernels' scalar type: every kernel is a template over
// it, so the loops without an activation stay as they were.
template <typename scalar_t, typename F>
inline void dispatch(const Activation& a, const F& f) {
  switch (a.kind) {
    case Kind::kNone:
      return f(None<scalar_t>{});
    case Kind::kReLU:
      return f(ReLU<scalar_t>{});
    case Kind::kLeakyReLU:
      return f(LeakyReLU<scalar_t>{static_cast<scalar_t>(a.alpha)});
    case Kind::kELU:
      return f(ELU<scalar_t>{static_cast<scalar_t>(a.alpha)});
  }
}

}  // namespace zoo::activation
