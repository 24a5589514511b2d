// Which kernel zoo's CPU linear layer runs for a product (also reported by zoo._C).
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>

namespace zoo::cpu::linear {

// How out (rows x cols) = a (rows x inner) b of this dtype is computed: kDot (our dot-product
// kernel: fewer than 12 rows or 16 columns, the forward only), kBlocks (our register-blocked
// product) or kBlas (torch's products: float64, CPUs where MKL runs its best code, empty products,
// and the backward's small products).
enum class Algorithm { kBlas, kDot, kBlocks };

Algorithm algorithm(at::ScalarType dtype, int64_t rows, int64_t inner, int64_t cols, bool forward);

// "blas", "dot" or "blocks", as zoo._C.linear_cpu_algorithm reports it.
const char* name(Algorithm algorithm);

}  // namespace zoo::cpu::linear
