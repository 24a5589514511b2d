// Matrix products on our AVX-512 float32 kernel (gemm.h) over the threads: the
// convolutions' and the linear layer's, where MKL runs slow code (gemm::replaces_mkl).
#pragma once

#include "cpu/gemm.h"

#include <ATen/Parallel.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace zoo::cpu {

// Whether products of this dtype run on our AVX-512 kernel (float32, where MKL is slow:
// see gemm::replaces_mkl) instead of MKL.
inline bool own_products(at::ScalarType dtype) {
#if defined(ZOO_HAVE_AVX512_GEMM)
  return dtype == at::kFloat && gemm::replaces_mkl();
#else
  (void)dtype;
  return false;
#endif
}

// out (rows x cols, dense row-major) = a (rows x inner) b (inner x cols) (+= when Add), on
// our kernel (only where own_products), in column panels or row blocks over the threads
// when `parallel` (else the caller's threads share the chunks). a and b are dense
// row-major; TransA: a holds a^T (inner x rows), TransB: b holds b^T (cols x inner).
template <bool Add = false, bool TransA = false, bool TransB = false, typename scalar_t>
void own_product(const scalar_t* a, const scalar_t* b, scalar_t* out, int64_t rows, int64_t inner, int64_t cols,
                 bool parallel) {
#if defined(ZOO_HAVE_AVX512_GEMM)
  if constexpr (std::is_same_v<scalar_t, float>) {
    constexpr int64_t kTaskFlops = int64_t(1) << 20;  // per hand-off
    const int64_t lda = TransA ? rows : inner, ldb = TransB ? inner : cols;
    if (cols >= rows) {
      const int64_t panels = (cols + gemm::kColumns - 1) / gemm::kColumns;
      const int64_t grain = parallel ? std::max<int64_t>(1, kTaskFlops / (2 * rows * inner * gemm::kColumns)) : panels;
      at::parallel_for(0, panels, grain, [&](int64_t begin, int64_t end) {
        const int64_t j0 = begin * gemm::kColumns, j1 = std::min(cols, end * gemm::kColumns);
        gemm::product<Add, TransA, TransB>(rows, j1 - j0, inner, a, lda, TransB ? b + j0 * ldb : b + j0, ldb,
                                           out + j0, cols);
      });
    } else {
      const int64_t blocks = (rows + gemm::kRows - 1) / gemm::kRows;
      const int64_t grain = parallel ? std::max<int64_t>(1, kTaskFlops / (2 * cols * inner * gemm::kRows)) : blocks;
      at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
        const int64_t i0 = begin * gemm::kRows, i1 = std::min(rows, end * gemm::kRows);
        gemm::product<Add, TransA, TransB>(i1 - i0, cols, inner, TransA ? a + i0 : a + i0 * lda, lda, b, ldb,
                                           out + i0 * cols, cols);
      });
    }
    return;
  }
#endif
  (void)a, (void)b, (void)out, (void)rows, (void)inner, (void)cols, (void)parallel;
  TORCH_INTERNAL_ASSERT(false, "zoo: own_product called where own_products is false");
}

}  // namespace zoo::cpu
