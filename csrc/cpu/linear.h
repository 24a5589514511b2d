// Which kernel zoo's CPU linear layer runs for a product (also reported by zoo._C).
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>

namespace zoo::cpu::linear {

// How out (rows x cols) = a (rows x inner) b of this dtype is computed: "dot" (our dot-product
// kernel: fewer than 12 rows or 16 columns, the forward only), "blocks" (our register-blocked
// product) or "blas" (torch's products: float64, CPUs where MKL runs its best code, empty products,
// and the backward's small products).
const char* algorithm(at::ScalarType dtype, int64_t rows, int64_t inner, int64_t cols, bool forward);

}  // namespace zoo::cpu::linear
