// Small float32 matrix products for the Winograd convolution, on AVX-512.
//
// Why not MKL (at::bmm): on the project's AMD EPYC VM MKL runs its AVX2 code
// (108 GFLOP/s on one core for 2048^3, while oneDNN's convolutions reach ~250
// there), and its per-call cost shows on the 16 small products of a chunk.
// The kernel keeps a block of C in registers: 12 rows x 32 columns (24 zmm
// accumulators), broadcasting one value of A against two vectors of B. Builds without AVX-512 (ZOO_NATIVE_ARCH=0 on an older
// CPU) and float64 use at::bmm / at::baddbmm instead (see winograd.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#define ZOO_HAVE_AVX512_GEMM 1
#endif

namespace zoo::cpu::gemm {

#if defined(__AVX512F__)
// out (16 x 16, row stride ldo) = in (16 x 16, row stride ldi)^T in registers: pairs of
// rows interleaved, then 64-bit pairs, then 128-bit lanes twice (the usual 4-stage
// transpose; 64 shuffles for 256 values where the scalar loop moved each one).
inline void transpose16(const float* in, int64_t ldi, float* out, int64_t ldo) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(in + i * ldi);
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0x88);
      t[8 * i + j + 4] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0xdd);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(out + i * ldo, r[i]);
}
#endif

// out (cols x rows, row stride ldo) = in (rows x cols, row stride ldi)^T, in 16 x 16
// blocks that stay in L1 (whole float blocks in registers with AVX-512).
template <typename T>
void transpose(const T* in, int64_t rows, int64_t cols, int64_t ldi, T* out, int64_t ldo) {
  constexpr int64_t kBlock = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock)
    for (int64_t c0 = 0; c0 < cols; c0 += kBlock) {
      const int64_t r1 = std::min(rows, r0 + kBlock), c1 = std::min(cols, c0 + kBlock);
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {
        if (r1 - r0 == kBlock && c1 - c0 == kBlock) {
          transpose16(in + r0 * ldi + c0, ldi, out + c0 * ldo + r0, ldo);
          continue;
        }
      }
#endif
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) out[c * ldo + r] = in[r * ldi + c];
    }
}

#if defined(ZOO_HAVE_AVX512_GEMM)

// Whether the im2col convolution's float32 products run here instead of MKL. MKL picks
// its code by CPU vendor: on the AMD EPYC VM it ran AVX2 code (94-112 GFLOP/s on one
// core for the presets' product shapes, this kernel 207-260); on Intel CPUs it runs
// AVX-512 near peak. (The Winograd products always run here: they are many small
// products per chunk, where MKL's per-call cost also shows.)
inline bool replaces_mkl() {
  static const bool amd = __builtin_cpu_is("amd");
  return amd;
}

constexpr int kRows = 12;     // rows of C per register block
constexpr int kColumns = 32;  // columns of C per register block (two zmm)

// The mask of the first `n` (0..16) lanes.
inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// C[0:R, 0:32] = A[0:R, 0:K] B[0:K, 0:32] (or += when Add) for one register block;
// `mask0`, `mask1` select the valid columns of the two 16-wide halves (the last block
// may be narrower).
template <bool Add, int R>
inline void block_nn(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
                     __mmask16 mask0, __mmask16 mask1) {
  __m512 acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_maskz_loadu_ps(mask0, B + k * ldb);
    const __m512 b1 = _mm512_maskz_loadu_ps(mask1, B + k * ldb + 16);
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(A[i * lda + k]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < R; ++i) {
    if constexpr (Add) {
      acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(mask0, C + i * ldc));
      acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(mask1, C + i * ldc + 16));
    }
    _mm512_mask_storeu_ps(C + i * ldc, mask0, acc[i][0]);
    _mm512_mask_storeu_ps(C + i * ldc + 16, mask1, acc[i][1]);
  }
}

// The block for the last `rows` (< kRows) rows of C.
template <bool Add>
inline void block_nn_rows(int rows, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                          int64_t ldc, __mmask16 m0, __mmask16 m1) {
  switch (rows) {
    case 1: return block_nn<Add, 1>(K, A, lda, B, ldb, C, ldc, m0, m1);
    case 2: return block_nn<Add, 2>(K, A, lda, B, ldb, C, ldc, m0, m1);
    case 3: return block_nn<Add, 3>(K, A, lda, B, ldb, C, ldc, m0, m1);
    case 4: return block_nn<Add, 4>(K, A, lda, B, ldb, C, ldc, m0, m1);
    case 5: return block_nn<Add, 5>(K, A, lda, B, ldb, C, ldc, m0, m1);
    case 6: return block_nn<Add, 6>(K, A, lda, B, ldb, C, ldc, m0, m1);
    case 7: return block_nn<Add, 7>(K, A, lda, B, ldb, C, ldc, m0, m1);
    case 8: return block_nn<Add, 8>(K, A, lda, B, ldb, C, ldc, m0, m1);
    case 9: return block_nn<Add, 9>(K, A, lda, B, ldb, C, ldc, m0, m1);
    case 10: return block_nn<Add, 10>(K, A, lda, B, ldb, C, ldc, m0, m1);
    case 11: return block_nn<Add, 11>(K, A, lda, B, ldb, C, ldc, m0, m1);
    default: return block_nn<Add, kRows>(K, A, lda, B, ldb, C, ldc, m0, m1);
  }
}

// Rows of B per packed panel: kColumns x kDepth floats (32 KiB) stay in L1.
constexpr int64_t kDepth = 256;

// C (M x N, row stride ldc) = A (M x K, row stride lda) B (K x N, row stride ldb), all
// row-major (C += A B when Add). For each 32-column panel of B and each kDepth rows of
// it, the piece is first copied into a contiguous buffer (zero past column N) that
// stays in L1 while every row block of A passes over it. Unpacked, the panel's rows lie
// ldb apart, and for row strides like the 6 KiB of an im2col matrix with 1536 columns
// every row falls in the same two L1 sets; unblocked in depth, a 2400-deep panel ran
// from L2 at half the speed (125 vs 250 GFLOP/s on one core of the AMD EPYC VM).
template <bool Add = false>
inline void nn(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
               int64_t ldc) {
  alignas(64) float packed[kDepth * kColumns];
  for (int64_t j = 0; j < N; j += kColumns) {
    const __mmask16 m0 = first_lanes(N - j), m1 = first_lanes(N - j - 16);
    for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
      const int64_t depth = std::min(kDepth, K - k0);
      for (int64_t k = 0; k < depth; ++k) {
        _mm512_store_ps(packed + k * kColumns, _mm512_maskz_loadu_ps(m0, B + (k0 + k) * ldb + j));
        _mm512_store_ps(packed + k * kColumns + 16, _mm512_maskz_loadu_ps(m1, B + (k0 + k) * ldb + j + 16));
      }
      const float* a = A + k0;
      float* c = C + j;
      int64_t i = 0;
      if (Add || k0 > 0) {
        for (; i + kRows <= M; i += kRows) block_nn<true, kRows>(depth, a + i * lda, lda, packed, kColumns, c + i * ldc, ldc, m0, m1);
        if (i < M) block_nn_rows<true>(static_cast<int>(M - i), depth, a + i * lda, lda, packed, kColumns, c + i * ldc, ldc, m0, m1);
      } else {
        for (; i + kRows <= M; i += kRows) block_nn<false, kRows>(depth, a + i * lda, lda, packed, kColumns, c + i * ldc, ldc, m0, m1);
        if (i < M) block_nn_rows<false>(static_cast<int>(M - i), depth, a + i * lda, lda, packed, kColumns, c + i * ldc, ldc, m0, m1);
      }
    }
  }
}

#endif  // ZOO_HAVE_AVX512_GEMM

}  // namespace zoo::cpu::gemm
