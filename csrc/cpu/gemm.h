// float32 matrix products on AVX-512: the Winograd, im2col and pointwise convolutions' and
// the linear layer's (cpu/own_product.h runs them over the threads).
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
// may be narrower). A's element (i, k) is A[i * lda + k], or A[k * lda + i] when TransA.
// Without Add, row i starts from row_bias[i] when given. Stream: C's full, 64-byte aligned
// rows are written with non-temporal stores (for outputs the caches cannot keep anyway).
template <bool Add, int R, bool TransA = false, bool Stream = false>
inline void block_nn(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
                     __mmask16 mask0, __mmask16 mask1, const float* row_bias = nullptr) {
  __m512 acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = Add || !row_bias ? _mm512_setzero_ps() : _mm512_set1_ps(row_bias[i]);
  for (int64_t k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_maskz_loadu_ps(mask0, B + k * ldb);
    const __m512 b1 = _mm512_maskz_loadu_ps(mask1, B + k * ldb + 16);
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(TransA ? A[k * lda + i] : A[i * lda + k]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < R; ++i) {
    if constexpr (Add) {
      acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(mask0, C + i * ldc));
      acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(mask1, C + i * ldc + 16));
    }
    if constexpr (Stream && !Add) {
      if ((mask0 & mask1) == 0xFFFF && reinterpret_cast<uintptr_t>(C + i * ldc) % 64 == 0) {
        _mm512_stream_ps(C + i * ldc, acc[i][0]);
        _mm512_stream_ps(C + i * ldc + 16, acc[i][1]);
        continue;
      }
    }
    _mm512_mask_storeu_ps(C + i * ldc, mask0, acc[i][0]);
    _mm512_mask_storeu_ps(C + i * ldc + 16, mask1, acc[i][1]);
  }
}

// The block for the last `rows` (< kRows) rows of C.
template <bool Add, bool TransA, bool Stream = false>
inline void block_nn_rows(int rows, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                          int64_t ldc, __mmask16 m0, __mmask16 m1, const float* row_bias) {
  switch (rows) {
    case 1: return block_nn<Add, 1, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
    case 2: return block_nn<Add, 2, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
    case 3: return block_nn<Add, 3, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
    case 4: return block_nn<Add, 4, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
    case 5: return block_nn<Add, 5, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
    case 6: return block_nn<Add, 6, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
    case 7: return block_nn<Add, 7, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
    case 8: return block_nn<Add, 8, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
    case 9: return block_nn<Add, 9, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
    case 10: return block_nn<Add, 10, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
    case 11: return block_nn<Add, 11, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
    default: return block_nn<Add, kRows, TransA, Stream>(K, A, lda, B, ldb, C, ldc, m0, m1, row_bias);
  }
}

// Rows of B per packed panel: kColumns x kDepth floats (32 KiB) stay in L1.
constexpr int64_t kDepth = 256;

// Copies B[k0 : k0 + depth, j : j + 32] into `packed` (depth x 32, zero past column N);
// B's element (k, j) is B[k * ldb + j], or B[j * ldb + k] when TransB (a linear layer's
// weight), whose 16 x 16 tiles are transposed in registers.
template <bool TransB, bool Prefetch = false>
inline void pack_panel(const float* B, int64_t ldb, int64_t N, int64_t j, int64_t k0, int64_t depth, float* packed) {
  if constexpr (!TransB) {
    const __mmask16 m0 = first_lanes(N - j), m1 = first_lanes(N - j - 16);
    const bool next_panel = Prefetch && j + kColumns < N;
    for (int64_t k = 0; k < depth; ++k) {
      const float* row = B + (k0 + k) * ldb + j;
      _mm512_store_ps(packed + k * kColumns, _mm512_maskz_loadu_ps(m0, row));
      _mm512_store_ps(packed + k * kColumns + 16, _mm512_maskz_loadu_ps(m1, row + 16));
      // Prefetch: the next panel's piece of the row. Rows ldb apart (an image's channels) are short
      // runs that the hardware prefetchers do not follow from memory (a pointwise convolution's
      // per-image product ran at 60% of its in-cache speed on a batch read from memory).
      if (next_panel) {
        _mm_prefetch(reinterpret_cast<const char*>(row + kColumns), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(row + kColumns + 16), _MM_HINT_T0);
      }
    }
  } else {
    for (int64_t half = 0; half < kColumns; half += 16) {
      const int64_t columns = std::clamp<int64_t>(N - j - half, 0, 16);
      const float* b = B + (j + half) * ldb + k0;
      int64_t k = 0;
      if (columns == 16)
        for (; k + 16 <= depth; k += 16) transpose16(b + k, ldb, packed + k * kColumns + half, kColumns);
      for (; k < depth; ++k)
        for (int64_t c = 0; c < 16; ++c) packed[k * kColumns + half + c] = c < columns ? b[c * ldb + k] : 0.0f;
    }
  }
}

// C (M x N, row stride ldc) = A (M x K) B (K x N) (C += A B when Add), row-major, A's rows
// lda apart and B's ldb apart; TransA / TransB: A or B is given transposed, as A^T (K x M,
// rows lda apart) or B^T (N x K, rows ldb apart). For each 32-column panel of B and each
// kDepth rows of it, the piece is first copied into a contiguous buffer (zero past column N) that
// stays in L1 while every row block of A passes over it. Unpacked, the panel's rows lie
// ldb apart, and for row strides like the 6 KiB of an im2col matrix with 1536 columns
// every row falls in the same two L1 sets; unblocked in depth, a 2400-deep panel ran
// from L2 at half the speed (125 vs 250 GFLOP/s on one core of the AMD EPYC VM). Without
// Add, row i of C starts from row_bias[i] when given (a convolution's bias per output
// channel). Prefetch, for a B read from memory: B's next panel is prefetched while one is
// packed. Stream, for a C too large for the caches (without Add, K <= kDepth): C is written
// with non-temporal stores; the caller fences (_mm_sfence) before C is read.
template <bool Add = false, bool TransA = false, bool TransB = false, bool Stream = false, bool Prefetch = false>
inline void product(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                    float* C, int64_t ldc, const float* row_bias = nullptr) {
  alignas(64) float packed[kDepth * kColumns];
  for (int64_t j = 0; j < N; j += kColumns) {
    const __mmask16 m0 = first_lanes(N - j), m1 = first_lanes(N - j - 16);
    for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
      const int64_t depth = std::min(kDepth, K - k0);
      pack_panel<TransB, Prefetch>(B, ldb, N, j, k0, depth, packed);
      const float* a = TransA ? A + k0 * lda : A + k0;
      const int64_t row_step = TransA ? 1 : lda;  // from one row of A to the next
      float* c = C + j;
      int64_t i = 0;
      // The three ways over the row blocks stay spelled out here: moved into one helper function
      // templated on them, the accumulating products ran at half speed (linear 784 -> 1024 forward
      // at 64 rows 2.08x -> 0.84x of MKL, pointwise 160 -> 96 forward + backward 32.5 -> 46.6 ms).
      if (Add || k0 > 0) {
        for (; i + kRows <= M; i += kRows)
          block_nn<true, kRows, TransA>(depth, a + i * row_step, lda, packed, kColumns, c + i * ldc, ldc, m0, m1);
        if (i < M)
          block_nn_rows<true, TransA>(static_cast<int>(M - i), depth, a + i * row_step, lda, packed, kColumns,
                                      c + i * ldc, ldc, m0, m1, nullptr);
      } else if (Stream && K <= kDepth) {  // one pass over the depth: each value of C is written once
        for (; i + kRows <= M; i += kRows)
          block_nn<false, kRows, TransA, true>(depth, a + i * row_step, lda, packed, kColumns, c + i * ldc, ldc, m0,
                                               m1, row_bias ? row_bias + i : nullptr);
        if (i < M)
          block_nn_rows<false, TransA, true>(static_cast<int>(M - i), depth, a + i * row_step, lda, packed,
                                             kColumns, c + i * ldc, ldc, m0, m1, row_bias ? row_bias + i : nullptr);
      } else {
        for (; i + kRows <= M; i += kRows)
          block_nn<false, kRows, TransA>(depth, a + i * row_step, lda, packed, kColumns, c + i * ldc, ldc, m0, m1,
                                         row_bias ? row_bias + i : nullptr);
        if (i < M)
          block_nn_rows<false, TransA>(static_cast<int>(M - i), depth, a + i * row_step, lda, packed, kColumns,
                                       c + i * ldc, ldc, m0, m1, row_bias ? row_bias + i : nullptr);
      }
    }
  }
}

// C[0:MR, 0:NR] = A[0:MR, 0:K] B[0:NR, 0:K]^T (+ bias[0:NR] when given) by dot products of
// rows, 16 values at a time: MR rows of A against NR rows of B, MR * NR accumulators.
template <int MR, int NR>
inline void dot_block(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, const float* bias, float* C,
                      int64_t ldc) {
  __m512 acc[MR][NR];
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < NR; ++r) acc[m][r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 mask = first_lanes(K - k);
    __m512 b[NR];
    for (int r = 0; r < NR; ++r) b[r] = _mm512_maskz_loadu_ps(mask, B + r * ldb + k);
    for (int m = 0; m < MR; ++m) {
      const __m512 a = _mm512_maskz_loadu_ps(mask, A + m * lda + k);
      for (int r = 0; r < NR; ++r) acc[m][r] = _mm512_fmadd_ps(a, b[r], acc[m][r]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int r = 0; r < NR; ++r) C[m * ldc + r] = _mm512_reduce_add_ps(acc[m][r]) + (bias ? bias[r] : 0.0f);
}

// Rows of A and of B per dot_block.
constexpr int kDotRows = 4;

// C (M x N, row stride ldc) = A (M x K) B^T + bias (when given), B given as (N x K), rows lda
// and ldb apart, by dot products: for few rows of A (a batch of one image is a matrix-vector
// product) or few columns of C, where product() would compute mostly empty 12 x 32 blocks. Each
// group of kDotRows rows of B is read from memory once and then from L1 for every row of A.
inline void dot_product_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                           const float* bias, float* C, int64_t ldc) {
  for (int64_t j = 0; j < N; j += kDotRows) {
    const int64_t columns = std::min<int64_t>(kDotRows, N - j);
    for (int64_t i = 0; i < M; i += kDotRows) {
      const int64_t rows = std::min<int64_t>(kDotRows, M - i);
      const float* a = A + i * lda;
      // The last N % kDotRows columns one at a time.
      for (int64_t r = 0; r < columns; r += columns == kDotRows ? kDotRows : 1) {
        const float* b = B + (j + r) * ldb;
        const float* bias_r = bias ? bias + j + r : nullptr;
        float* c = C + i * ldc + j + r;
        if (columns == kDotRows) {
          switch (rows) {
            case 1: dot_block<1, kDotRows>(K, a, lda, b, ldb, bias_r, c, ldc); break;
            case 2: dot_block<2, kDotRows>(K, a, lda, b, ldb, bias_r, c, ldc); break;
            case 3: dot_block<3, kDotRows>(K, a, lda, b, ldb, bias_r, c, ldc); break;
            default: dot_block<kDotRows, kDotRows>(K, a, lda, b, ldb, bias_r, c, ldc); break;
          }
        } else {
          switch (rows) {
            case 1: dot_block<1, 1>(K, a, lda, b, ldb, bias_r, c, ldc); break;
            case 2: dot_block<2, 1>(K, a, lda, b, ldb, bias_r, c, ldc); break;
            case 3: dot_block<3, 1>(K, a, lda, b, ldb, bias_r, c, ldc); break;
            default: dot_block<kDotRows, 1>(K, a, lda, b, ldb, bias_r, c, ldc); break;
          }
        }
      }
    }
  }
}

#endif  // ZOO_HAVE_AVX512_GEMM

}  // namespace zoo::cpu::gemm
