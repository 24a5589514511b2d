// exp and expm1 of non-positive arguments, written so that GCC vectorises the loops that call them
// (no calls, no branches: selects, a polynomial and integer bit arithmetic), for ELU in batch norm's
// pass (activation.h). About 1 ulp from the correctly rounded result (measured over [-120, 0]:
// float 0.82 / 1.00 ulp, double 1.09 / 0.95 ulp for expm1 / exp); NaN stays NaN. Written once for
// scalars and, under AVX-512, for Float16 vectors (GCC's vector extensions give vectors the scalar
// operators; an __m512 converts to one), so the streaming kernels that work on AVX-512 registers
// compute exactly what the vectorised loops compute.
#pragma once

#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace zoo::cpu {

// The constants of one floating-point format. Range reduction: v = n ln2 + r with |r| <= ln2 / 2,
// ln2 in two parts (Cody and Waite) so that n ln2 is exact enough; expm1(r) by its Taylor series,
// whose first omitted term is below half an ulp at |r| = ln2 / 2 for the degree given.
template <typename T>
struct ExpFormat;

template <>
struct ExpFormat<float> {
  using Scalar = float;
  using Bits = uint32_t;
  static constexpr int kMantissaBits = 23, kDegree = 7;
  static constexpr uint32_t kExponentBias = 127;
  static constexpr float kLowest = -87.0f;        // exp(kLowest) is still a normal float
  static constexpr float kShifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  static constexpr float kLog2e = 1.44269504088896341f;
  static constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
};

template <>
struct ExpFormat<double> {
  using Scalar = double;
  using Bits = uint64_t;
  static constexpr int kMantissaBits = 52, kDegree = 13;
  static constexpr uint64_t kExponentBias = 1023;
  static constexpr double kLowest = -708.0;
  static constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr double kLog2e = 1.44269504088896340736;
  static constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
};

#if defined(__AVX512F__)
// An AVX-512 register of floats as a GCC vector (__m512 itself carries attributes templates drop).
typedef float Float16 __attribute__((vector_size(64)));

template <>
struct ExpFormat<Float16> : ExpFormat<float> {
  typedef uint32_t Bits __attribute__((vector_size(64)));
};
#endif

constexpr double inverse_factorial(int k) {
  double f = 1;
  for (int i = 2; i <= k; ++i) f *= i;
  return 1.0 / f;
}

// 1/K! + r (1/(K+1)! + r (... + r / Degree!)): Horner's rule, unrolled at compile time (GCC does not
// vectorise a loop with a loop inside).
template <typename T, typename Scalar, int K, int Degree>
inline T taylor_tail(T r) {
  constexpr auto coefficient = static_cast<Scalar>(inverse_factorial(K));
  if constexpr (K == Degree) {
    return T{} + coefficient;
  } else {
    return taylor_tail<T, Scalar, K + 1, Degree>(r) * r + coefficient;
  }
}

// exp(v) = scale * (1 + p) and expm1(v) = scale * p + (scale - 1), for v clamped to [kLowest, 0].
template <typename T>
struct ExpParts {
  T scale;  // 2^n
  T p;      // expm1(r)
};

template <typename T>
inline ExpParts<T> exp_parts(T v) {
  using F = ExpFormat<T>;
  using S = typename F::Scalar;
  using Bits = typename F::Bits;
  T t = v < F::kLowest ? T{} + F::kLowest : v;  // NaN passes through both selects
  t = t > S(0) ? T{} : t;
  const T shifted = t * F::kLog2e + F::kShifter;  // n in the low mantissa bits
  const T n = shifted - F::kShifter;
  const T r = (t - n * F::kLn2Hi) - n * F::kLn2Lo;
  const T p = r + r * r * taylor_tail<T, S, 2, F::kDegree>(r);
  // 2^n: n + bias into the exponent field (the shifter's own bits shift out of the word). The
  // builtin rather than std::bit_cast: the CUDA build's host files are C++17.
  const Bits exponent = (__builtin_bit_cast(Bits, shifted) + F::kExponentBias) << F::kMantissaBits;
  return {__builtin_bit_cast(T, exponent), p};
}

// exp(v) - 1 for v <= 0 (-1 below kLowest, where it rounds to -1 anyway).
template <typename T>
inline T expm1_nonpositive(T v) {
  const ExpParts<T> e = exp_parts(v);
  return e.scale * e.p + (e.scale - typename ExpFormat<T>::Scalar(1));
}

// exp(v) for v <= 0 (0 below kLowest, where it would be subnormal: at most 2^-125 off).
template <typename T>
inline T exp_nonpositive(T v) {
  const ExpParts<T> e = exp_parts(v);
  const T value = e.scale * e.p + e.scale;
  return v < ExpFormat<T>::kLowest ? T{} : value;
}

}  // namespace zoo::cpu
