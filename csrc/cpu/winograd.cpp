// Winograd F(2x2, 3x3) and F(2x2, 5x5) on the CPU (see winograd.h for the maths,
// winograd_matrices.h for the transforms).
//
// The batch is cut into chunks of tile rows; one thread takes a chunk through
// all its steps (input transform, one product per transformed position,
// output transform) while the chunk's transformed tiles are still in cache.
// Transformed data is laid out [position][channel][tile of the chunk]. Each
// transform works one channel at a time over all the chunk's tiles (see below),
// in vector steps over blocks of tiles. The transforms are written once for
// any F(m, r): their sums over the (constant) matrices are expanded at compile
// time, so zero entries cost nothing and +-1 entries no multiplication.
#include "cpu/winograd.h"

#include "cpu/blas.h"
#include "cpu/gemm.h"
#include "cpu/im2col.h"
#include "cpu/memory.h"
#include "cpu/parallel.h"
#include "cpu/prefetch.h"
#include "cpu/winograd_matrices.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace zoo::cpu::winograd {
namespace {

// Scratch per chunk (transformed input + transformed output, all positions):
// small enough that a chunk's steps find their data in the cache.
// (Measured on 192-channel layers: 256 KiB chunks ran 4x slower than 4 MiB ones,
// because every chunk streams all the transformed kernels, 2.4 MB there.)
constexpr int64_t kChunkBytes = int64_t(4) << 20;

// Tiles a chunk takes at least, memory permitting: the columns of its products.
constexpr int64_t kMinChunkTiles = 32;

// Tiles of m x m outputs over a batch: TH x TW per image. A "unit" is one row of
// tiles of one image (unit u: image u / TH, tile row u % TH); chunks are ranges of units.
template <typename F>
struct Tiling {
  int64_t N, TH, TW;
  int64_t units_per_chunk, chunks;

  Tiling(int64_t N_, int64_t Ho, int64_t Wo, int64_t channels, size_t element_size)
      : N(N_), TH((Ho + F::m - 1) / F::m), TW((Wo + F::m - 1) / F::m) {
    const int64_t units = N * TH;
    const int64_t tile_bytes = F::alpha * F::alpha * channels * static_cast<int64_t>(element_size);
    const int64_t by_memory = std::max<int64_t>(1, kChunkBytes / (tile_bytes * TW));
    // At least two chunks per thread, for balance, when there are enough units.
    const int64_t threads = at::get_num_threads();
    const int64_t by_balance = std::max<int64_t>(1, units / (2 * threads));
    // But wide enough for the products: they run at a fraction of their speed on a few
    // columns (a batch-1 14x14 image cut into 7 chunks of 7 tiles ran 1.5x slower on two
    // threads than in one chunk on one).
    const int64_t by_width = (kMinChunkTiles + TW - 1) / TW;
    units_per_chunk = std::min(by_memory, std::max(by_balance, by_width));
    chunks = (units + units_per_chunk - 1) / units_per_chunk;
  }

  int64_t first_unit(int64_t chunk) const { return chunk * units_per_chunk; }
  int64_t end_unit(int64_t chunk) const { return std::min(N * TH, (chunk + 1) * units_per_chunk); }
};

// Where a chunk's transformed matrices live: element (position e, channel c, tile t)
// at e * stride + c * ld + t. Both strides are padded so that they are not multiples
// of a large power of two: the transforms write (and read) all positions at once and
// the products walk down columns, and power-of-two strides put all those streams in
// the same few L1 sets (measured: 3x slower for the 64-channel, 336-tile chunks of a
// 32->64 layer, whose position stride was 21 x 4096 bytes).
struct Layout {
  int64_t positions, ld, stride;

  Layout(int64_t positions_, int64_t channels, int64_t tiles, size_t element_size) : positions(positions_) {
    const int64_t line = 64 / static_cast<int64_t>(element_size);  // elements per cache line
    ld = (tiles + line - 1) / line * line;
    if ((ld / line) % 2 == 0) ld += line;  // an odd number of lines per row
    const int64_t page = 4096 / static_cast<int64_t>(element_size);
    stride = (channels * ld + page - 1) / page * page + line;  // one line past a 4 KiB boundary
  }

  int64_t elements() const { return positions * stride; }
};

// row[k] = plane[r][k - pad] for k < width: one input row, shifted by the padding, zero
// outside the plane (the columns inside form one range, valid_range as im2col finds it).
template <typename T>
void load_row(const T* plane, int64_t rows, int64_t cols, int64_t r, int64_t pad, int64_t width, T* row) {
  const ValidRange valid = r >= 0 && r < rows ? valid_range(cols, width, 1, -pad) : ValidRange{0, 0, 0};
  std::fill_n(row, valid.first, T(0));
  std::copy(plane + r * cols + valid.first + valid.offset, plane + r * cols + valid.last + valid.offset,
            row + valid.first);
  std::fill_n(row + valid.last, width - valid.last, T(0));
}

// body(std::integral_constant<int, i>) for i = 0 .. n-1, expanded at compile time.
template <int n, typename Body>
inline void static_for(const Body& body) {
  [&]<int... i>(std::integer_sequence<int, i...>) {
    (body(std::integral_constant<int, i>{}), ...);
  }(std::make_integer_sequence<int, n>{});
}

// The sum over i < n of Matrix[row][i] * value(i) (Matrix[i][row] when Transposed) for a
// constant transform matrix, expanded at compile time: zero terms are dropped and +-1
// terms need no multiplication, so the transforms cost only their real operations
// (and the loops around them vectorise).
template <const auto& Matrix, bool Transposed, int row, int n, typename T, typename Value>
inline T combine(const Value& value) {
  T sum = 0;
  static_for<n>([&](auto i) {
    constexpr double c = Transposed ? Matrix[decltype(i)::value][row] : Matrix[row][decltype(i)::value];
    if constexpr (c == 1) {
      sum += value(i);
    } else if constexpr (c == -1) {
      sum -= value(i);
    } else if constexpr (c != 0) {
      sum += static_cast<T>(c) * value(i);
    }
  });
  return sum;
}

// Tiles per block: one cache line of values, the unit the layouts' rows are padded to,
// so a block past the chunk's last tile stays inside its row.
template <typename T>
constexpr int64_t kLanes = 64 / sizeof(T);

// Tiles rounded up to whole blocks.
template <typename T>
int64_t whole_blocks(int64_t tiles) {
  return (tiles + kLanes<T> - 1) / kLanes<T> * kLanes<T>;
}

// to[j][k] = row[m k + j] for j < n, k < count (to[j] at to + j * stride): the values of
// one input row that the tiles of a row read at their column j. A plain loop: counts are
// 2-16, and vector versions (a block of permutes, or phases copied in blocks) measured
// slower, stalled on loads of the rows just written (store-to-load forwarding).
template <int m, int n, typename T>
void split_phases(const T* row, int64_t count, int64_t stride, T* to) {
  static_for<n>([&](auto j) {
    T* out = to + decltype(j)::value * stride;
    const T* in = row + decltype(j)::value;
    for (int64_t k = 0; k < count; ++k) out[k] = in[m * k];
  });
}

#if defined(__AVX512F__)
// split_phases of an input row for m = 2 in vector registers, straight from the source:
// to[j][k] = row[2 k + j - pad] (zero outside [0, W), or everywhere when row is null) for
// j < n, k < count, when the 2 (count - 1) + n values the tiles read fit in 32 lanes.
// Two masked loads, a permute per phase and a masked store, where the scalar version
// (a row copy, then one move per value) was the largest cost of a small layer.
constexpr int64_t kVectorRowLanes = 32;

template <int n>
void split_row_pairs(const float* row, int64_t W, int64_t pad, int64_t count, int64_t stride, float* to) {
  __m512 low = _mm512_setzero_ps(), high = _mm512_setzero_ps();  // lanes s = 0..31: row[s - pad]
  if (row != nullptr) {
    const int64_t loaded = std::min<int64_t>(W, kVectorRowLanes - pad);  // row[0, loaded) lands in lanes < 32
    const __m512 first = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << std::min<int64_t>(loaded, 16)) - 1), row);
    const __m512 second = loaded > 16
                              ? _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (loaded - 16)) - 1), row + 16)
                              : _mm512_setzero_ps();
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i shift = _mm512_set1_epi32(static_cast<int>(pad));
    // Lanes below pad stay zero (the padding); the others take source lane s - pad of (first, second).
    low = _mm512_maskz_permutex2var_ps(static_cast<__mmask16>(~((1u << pad) - 1)), first,
                                       _mm512_sub_epi32(lane, shift), second);
    high = _mm512_permutex2var_ps(first, _mm512_sub_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(16)), shift),
                                  second);
  }
  const __mmask16 keep = static_cast<__mmask16>((1u << count) - 1);
  const __m512i pairs = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  static_for<n>([&](auto j) {
    const __m512 phase = _mm512_permutex2var_ps(low, _mm512_add_epi32(pairs, _mm512_set1_epi32(decltype(j)::value)),
                                                high);
    _mm512_mask_storeu_ps(to + decltype(j)::value * stride, keep, phase);
  });
}

// The inverse for an output row, written straight into it: row[2 k + j] = from[j][k] for
// j < 2 and 2 k + j < cols (from[j] at from + j * stride), for cols <= 32.
inline void merge_row_pairs(const float* from, int64_t stride, int64_t cols, float* row) {
  const int64_t count = (cols + 1) / 2;
  const __mmask16 keep = static_cast<__mmask16>((1u << count) - 1);
  const __m512 even = _mm512_maskz_loadu_ps(keep, from), odd = _mm512_maskz_loadu_ps(keep, from + stride);
  // Lane 2k takes even[k] (source lane k), lane 2k + 1 odd[k] (source lane 16 + k).
  const __m512i low = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i high = _mm512_add_epi32(low, _mm512_set1_epi32(8));
  _mm512_mask_storeu_ps(row, static_cast<__mmask16>((1u << std::min<int64_t>(cols, 16)) - 1),
                        _mm512_permutex2var_ps(even, low, odd));
  if (cols > 16)
    _mm512_mask_storeu_ps(row + 16, static_cast<__mmask16>((1u << (cols - 16)) - 1),
                          _mm512_permutex2var_ps(even, high, odd));
}

// The taps of every tile of one image channel in one step, for planes of at most 64 values
// whose tiles fit one block of 16 (the 7x7 and 8x8 layers, m = 2): tap (i, j) of tile
// (th, tw), lane th * TW + tw, is plane[2 th + i - ph][2 tw + j - pw] (zero outside the
// plane), one permute of the plane's four registers per position. Row by row, 2-4 values
// per row and phase, the gather cost as much as the products there (64->64 at 7x7).
template <int alpha>
class PlaneTaps {
 public:
  static bool fits(int64_t H, int64_t W, int64_t TH, int64_t TW) { return H * W <= 64 && TH * TW <= 16; }

  PlaneTaps(int64_t H, int64_t W, int64_t ph, int64_t pw, int64_t TH, int64_t TW) : values_(H * W) {
    lanes_ = static_cast<__mmask16>((1u << (TH * TW)) - 1);
    for (int p = 0; p < alpha * alpha; ++p) {
      valid_[p] = high_[p] = 0;
      for (int l = 0; l < 16; ++l) {
        const int64_t r = 2 * (l / TW) + p / alpha - ph, c = 2 * (l % TW) + p % alpha - pw;
        const bool inside = l < TH * TW && r >= 0 && r < H && c >= 0 && c < W;
        index_[p][l] = inside ? static_cast<int32_t>(r * W + c) : 0;
        valid_[p] |= static_cast<__mmask16>(inside ? 1u << l : 0);
        high_[p] |= static_cast<__mmask16>(inside && r * W + c >= 32 ? 1u << l : 0);
      }
    }
  }

  // to[p * stride + l] for every position p and the image's lanes l.
  void gather(const float* plane, float* to, int64_t stride) const {
    __m512 v[4];
    for (int q = 0; q < 4; ++q) {
      const int64_t left = std::clamp<int64_t>(values_ - 16 * q, 0, 16);
      v[q] = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << left) - 1), plane + 16 * q);
    }
    for (int p = 0; p < alpha * alpha; ++p) {
      const __m512i index = _mm512_load_si512(index_[p]);  // its low 5 bits pick within each 32-value half
      const __m512 value = _mm512_mask_blend_ps(high_[p], _mm512_permutex2var_ps(v[0], index, v[1]),
                                                _mm512_permutex2var_ps(v[2], index, v[3]));
      _mm512_mask_storeu_ps(to + p * stride, lanes_, _mm512_maskz_mov_ps(valid_[p], value));
    }
  }

 private:
  int64_t values_;
  alignas(64) int32_t index_[alpha * alpha][16];
  __mmask16 valid_[alpha * alpha], high_[alpha * alpha], lanes_;
};

// Whether split_row_pairs serves rows of `count` tiles reading n columns each, padded by pad.
template <int m, int n, typename T>
constexpr bool row_pairs_fit(int64_t count, int64_t pad) {
  return std::is_same_v<T, float> && m == 2 && count <= 16 && 2 * (count - 1) + n <= kVectorRowLanes && pad < 16;
}
#endif

// to[j][k] = plane[r][m k + j - pad] (zero outside the plane) for j < n, k < count (to[j] at
// to + j * stride): the values of row r that a row of `count` tiles reads at their column
// j. Through `row` (scratch of m (count - 1) + n values) where the vector path does not serve.
template <int m, int n, typename T>
void gather_tile_columns(const T* plane, int64_t rows, int64_t cols, int64_t r, int64_t pad, int64_t count,
                         int64_t stride, T* row, T* to) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && m == 2) {
    if (row_pairs_fit<m, n, T>(count, pad)) {
      split_row_pairs<n>(r >= 0 && r < rows ? plane + r * cols : nullptr, cols, pad, count, stride, to);
      return;
    }
  }
#endif
  load_row(plane, rows, cols, r, pad, m * (count - 1) + n, row);
  split_phases<m, n>(row, count, stride, to);
}

// The inverse for an output row: row[m k + j] = from[j][k] for j < m, k < count (from[j]
// at from + j * stride), in whole blocks (constant in length, so vector stores); `row`
// holds m * whole_blocks(count) values.
template <int m, typename T>
void merge_phases(const T* from, int64_t count, int64_t stride, T* row) {
  constexpr int64_t L = kLanes<T>;
  for (int64_t k0 = 0; k0 < count; k0 += L)
    static_for<m>([&](auto j) {
      const T* in = from + decltype(j)::value * stride + k0;
      T* out = row + m * k0 + decltype(j)::value;
#pragma omp simd
      for (int64_t l = 0; l < L; ++l) out[m * l] = in[l];
    });
}

// The transforms below are [[gnu::flatten]]: GCC left the static_for bodies of the 6x6
// (5x5-kernel) transforms as 72 out-of-line calls per 16-tile block, each a single vector
// step, and the input transform cost half the products' time (96->192 5x5 at 16x16:
// forward 36 -> 28 ms, 192->96 46 -> 31 ms on 2 threads once inlined).
//
// The transforms below work one channel at a time over all the tiles of the chunk:
// a tile row holds only 4-16 tiles for the presets' images (7-32 pixels wide), too
// few for a vector loop, so each channel's tile values are first gathered into one
// array per position of the tile (or scattered from it), and the transform itself runs
// over blocks of kLanes tiles: every step of it is one vector operation on a block
// (the lane loop innermost, of constant length, so the compiler vectorises it whatever
// the size of the transform; a loop over tiles with the whole transform inside left
// 6x6 transforms scalar).

// V[e][c][t] = (B^T d B)[e] for the alpha x alpha input block d of each tile t of units
// [u0, u1) (t = (u - u0) * TW + tile column), reading x (N, C, H, W) with padding (ph, pw).
template <typename F, typename T>
[[gnu::flatten]] void transform_input(const T* x, int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw, const Tiling<F>& tiling,
                     int64_t u0, int64_t u1, const Layout& layout, T* V) {
  constexpr int m = F::m, alpha = F::alpha;
  constexpr int64_t L = kLanes<T>;
  const int64_t TW = tiling.TW, tiles = (u1 - u0) * TW, padded = whole_blocks<T>(tiles);
  const int64_t ld = layout.ld, plane = layout.stride;
  std::vector<T> row(m * (TW - 1) + alpha);  // the input columns a row of tiles reads
  // taps[i * alpha + j][t]: input (i, j) of tile t
  std::vector<T> taps(alpha * alpha * padded);
#if defined(__AVX512F__)
  std::optional<PlaneTaps<alpha>> whole;  // small planes: every tile of an image at once
  if constexpr (std::is_same_v<T, float> && m == 2)
    if (PlaneTaps<alpha>::fits(H, W, tiling.TH, TW)) whole.emplace(H, W, ph, pw, tiling.TH, TW);
#endif
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t n = u / tiling.TH, th = u % tiling.TH, t0 = (u - u0) * TW;
      const T* image = x + (n * C + c) * H * W;
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float> && m == 2) {
        if (whole && th == 0 && u + tiling.TH <= u1) {  // the whole image lies in the chunk
          if (c + 1 < C) prefetch_values(image + H * W, H * W);
          whole->gather(image, taps.data() + t0, padded);
          u += tiling.TH - 1;
          continue;
        }
      }
#endif
      for (int i = 0; i < alpha; ++i) {
        const int64_t r = m * th - ph + i;
        if (c + 1 < C && r >= 0 && r < H) prefetch_values(image + H * W + r * W, W);
        gather_tile_columns<m, alpha>(image, H, W, r, pw, TW, padded, row.data(), taps.data() + i * alpha * padded + t0);
      }
    }
    T* out = V + c * ld;
    for (int64_t t = 0; t < padded; t += L) {
      const T* in = taps.data() + t;
      T b[alpha][alpha][L];  // B^T d
      static_for<alpha>([&](auto a) {
        static_for<alpha>([&](auto j) {
#pragma omp simd
          for (int64_t l = 0; l < L; ++l)
            b[a][j][l] = combine<F::BT, false, decltype(a)::value, alpha, T>(
                [&](int i) { return in[(i * alpha + j) * padded + l]; });
        });
      });
      static_for<alpha>([&](auto a) {  // (B^T d) B
        static_for<alpha>([&](auto e) {
          T* to = out + (a * alpha + e) * plane + t;
#pragma omp simd
          for (int64_t l = 0; l < L; ++l)
            to[l] = combine<F::BT, false, decltype(e)::value, alpha, T>([&](int j) { return b[a][j][l]; });
        });
      });
    }
  }
}

// y = A^T mm A (+ bias) for the transformed output mm of each tile of units [u0, u1)
// in M[e][co][t]; y (N, Cout, Ho, Wo), tiles past the last row or column cut off.
template <typename F, typename T>
[[gnu::flatten]] void transform_output(const T* M, int64_t Cout, int64_t Ho, int64_t Wo, const Tiling<F>& tiling, int64_t u0,
                      int64_t u1, const Layout& layout, const T* bias, T* y) {
  constexpr int m = F::m, alpha = F::alpha;
  constexpr int64_t L = kLanes<T>;
  const int64_t TW = tiling.TW, tiles = (u1 - u0) * TW, padded = whole_blocks<T>(tiles);
  const int64_t ld = layout.ld, plane = layout.stride;
  // outputs[i * m + j][t]: output (i, j) of tile t; a block of slack for merge_phases.
  const int64_t outputs_ld = padded + L;
  std::vector<T> outputs(m * m * outputs_ld);
  std::vector<T> row(m * whole_blocks<T>(TW));
  for (int64_t co = 0; co < Cout; ++co) {
    const T add = bias ? bias[co] : T(0);
    for (int64_t t = 0; t < padded; t += L) {  // past the last tile: values nobody reads
      const T* in = M + co * ld + t;
      T s[m][alpha][L];  // A^T mm
      static_for<m>([&](auto i) {
        static_for<alpha>([&](auto b) {
#pragma omp simd
          for (int64_t l = 0; l < L; ++l)
            s[i][b][l] = combine<F::AT, false, decltype(i)::value, alpha, T>(
                [&](int a) { return in[(a * alpha + b) * plane + l]; });
        });
      });
      static_for<m>([&](auto i) {  // (A^T mm) A
        static_for<m>([&](auto j) {
          T* to = outputs.data() + (i * m + j) * outputs_ld + t;
#pragma omp simd
          for (int64_t l = 0; l < L; ++l)
            to[l] = add + combine<F::AT, false, decltype(j)::value, alpha, T>([&](int b) { return s[i][b][l]; });
        });
      });
    }
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t n = u / tiling.TH, th = u % tiling.TH, t0 = (u - u0) * TW;
      T* image = y + (n * Cout + co) * Ho * Wo;
      for (int i = 0; i < m && m * th + i < Ho; ++i) {
        const T* from = outputs.data() + i * m * outputs_ld + t0;
        T* to = image + (m * th + i) * Wo;
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float> && m == 2) {
          if (Wo <= kVectorRowLanes) {
            merge_row_pairs(from, outputs_ld, Wo, to);
            continue;
          }
        }
#endif
        merge_phases<m>(from, TW, outputs_ld, row.data());
        std::copy_n(row.data(), Wo, to);
      }
    }
  }
}

// Z[e][co][t] = (A g A^T)[e] for the m x m block g of dy (N, Cout, Ho, Wo) of each tile
// of units [u0, u1), zero past the last row or column: the gradient of the transformed
// output mm, given the gradient g of y = A^T mm A.
template <typename F, typename T>
[[gnu::flatten]] void transform_output_grad(const T* dy, int64_t Cout, int64_t Ho, int64_t Wo, const Tiling<F>& tiling, int64_t u0,
                           int64_t u1, const Layout& layout, T* Z) {
  constexpr int m = F::m, alpha = F::alpha;
  constexpr int64_t L = kLanes<T>;
  const int64_t TW = tiling.TW, tiles = (u1 - u0) * TW, padded = whole_blocks<T>(tiles);
  const int64_t ld = layout.ld, plane = layout.stride;
  std::vector<T> row(m * TW);
  std::vector<T> grads(m * m * padded);  // grads[i * m + j][t]: dy (i, j) of tile t
  for (int64_t co = 0; co < Cout; ++co) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t n = u / tiling.TH, th = u % tiling.TH, t0 = (u - u0) * TW;
      const T* image = dy + (n * Cout + co) * Ho * Wo;
      for (int i = 0; i < m; ++i) {
        const int64_t r = m * th + i;
        if (co + 1 < Cout && r < Ho) prefetch_values(image + Ho * Wo + r * Wo, Wo);
        gather_tile_columns<m, m>(image, Ho, Wo, r, 0, TW, padded, row.data(), grads.data() + i * m * padded + t0);
      }
    }
    T* out = Z + co * ld;
    for (int64_t t = 0; t < padded; t += L) {
      const T* in = grads.data() + t;
      T s[alpha][m][L];  // A g
      static_for<alpha>([&](auto a) {
        static_for<m>([&](auto j) {
#pragma omp simd
          for (int64_t l = 0; l < L; ++l)
            s[a][j][l] = combine<F::AT, true, decltype(a)::value, m, T>(
                [&](int i) { return in[(i * m + j) * padded + l]; });
        });
      });
      static_for<alpha>([&](auto a) {  // (A g) A^T
        static_for<alpha>([&](auto b) {
          T* to = out + (a * alpha + b) * plane + t;
#pragma omp simd
          for (int64_t l = 0; l < L; ++l)
            to[l] = combine<F::AT, true, decltype(b)::value, m, T>([&](int j) { return s[a][j][l]; });
        });
      });
    }
  }
}

// U[e][o][i] = (G g G^T)[e] for the r x r kernels g = weight[o][i] of a (Cout, C, r, r)
// weight, or, for the input gradient (`for_input_grad`), of g = weight[i][o] turned by
// 180 degrees (o < C, i < Cout). In double, rounded once (G has fractions such as 1/6).
template <typename F, typename T>
at::Tensor transform_weight(const at::Tensor& weight, bool for_input_grad) {
  constexpr int r = F::r, alpha = F::alpha, taps = r * r;
  const int64_t Cout = weight.size(0), C = weight.size(1);
  const int64_t rows = for_input_grad ? C : Cout, cols = for_input_grad ? Cout : C;
  at::Tensor U = at::empty({alpha * alpha, rows, cols}, weight.options());
  const T* w = weight.const_data_ptr<T>();
  T* u = U.mutable_data_ptr<T>();
  const int64_t plane = rows * cols;
  // Kernel (o, i) starts at w + o * o_stride + i * i_stride; tap (a, b) is at a * r + b,
  // or, turned by 180 degrees, at taps - 1 - (a * r + b).
  const int64_t o_stride = for_input_grad ? taps : C * taps, i_stride = for_input_grad ? C * taps : taps;
  at::parallel_for(0, rows, std::max<int64_t>(1, 4096 / cols), [&](int64_t begin, int64_t end) {
    std::vector<double> staged(taps * cols);  // staged[tap][i]: unit-stride loads for the vector loop below
    for (int64_t o = begin; o < end; ++o) {
      for (int64_t i = 0; i < cols; ++i)
        for (int tap = 0; tap < taps; ++tap)
          staged[tap * cols + i] = w[o * o_stride + i * i_stride + (for_input_grad ? taps - 1 - tap : tap)];
      const double* k = staged.data();
      T* out = u + o * cols;
#pragma omp simd
      for (int64_t i = 0; i < cols; ++i) {
        double s[alpha][r];  // G g
        static_for<alpha>([&](auto a) {
          static_for<r>([&](auto b) {
            s[a][b] = combine<F::G, false, decltype(a)::value, r, double>(
                [&](int j) { return k[(j * r + b) * cols + i]; });
          });
        });
        static_for<alpha>([&](auto a) {  // (G g) G^T
          static_for<alpha>([&](auto e) {
            out[(a * alpha + e) * plane + i] =
                static_cast<T>(combine<F::G, false, decltype(e)::value, r, double>([&](int b) { return s[a][b]; }));
          });
        });
      }
    }
  });
  return U;
}

// dw[o][i] = G^T dU[.][o][i] G for dU (alpha^2, Cout, C): the weight gradient from the
// gradient of the transformed weights, in double.
template <typename F, typename T>
at::Tensor weight_grad_from_transformed(const at::Tensor& dU) {
  constexpr int r = F::r, alpha = F::alpha;
  const int64_t Cout = dU.size(1), C = dU.size(2), plane = Cout * C;
  at::Tensor dw = at::empty({Cout, C, r, r}, dU.options());
  const T* d = dU.const_data_ptr<T>();
  T* out = dw.mutable_data_ptr<T>();
  at::parallel_for(0, plane, 256, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      double s[r][alpha];  // G^T dU
      static_for<r>([&](auto i) {
        static_for<alpha>([&](auto b) {
          s[i][b] = combine<F::G, true, decltype(i)::value, alpha, double>(
              [&](int a) { return static_cast<double>(d[(a * alpha + b) * plane + k]); });
        });
      });
      static_for<r>([&](auto i) {  // (G^T dU) G
        static_for<r>([&](auto j) {
          out[k * r * r + i * r + j] =
              static_cast<T>(combine<F::G, true, decltype(j)::value, alpha, double>([&](int b) { return s[i][b]; }));
        });
      });
    }
  });
  return dw;
}

// The matrices (channels x tiles), one per position, of a chunk's transformed data, as a tensor.
template <typename T>
at::Tensor view(const T* data, int64_t channels, int64_t tiles, const Layout& layout,
                const at::TensorOptions& options) {
  return at::from_blob(const_cast<T*>(data), {layout.positions, channels, tiles}, {layout.stride, layout.ld, 1},
                       options);
}

// M[e] = U[e] V[e] for every position e: U (positions, rows, inner) contiguous, V
// (positions, inner, tiles) in layout `in`, M (positions, rows, tiles) in layout `out`.
template <typename T>
void multiply(const T* U, const T* V, T* M, int64_t rows, int64_t inner, int64_t tiles, const Layout& in,
              const Layout& out, const at::TensorOptions& options) {
#if defined(ZOO_HAVE_AVX512_GEMM)
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t e = 0; e < in.positions; ++e)
      gemm::product(rows, tiles, inner, U + e * rows * inner, inner, V + e * in.stride, in.ld, M + e * out.stride, out.ld);
    return;
  }
#endif
  at::Tensor product = view(M, rows, tiles, out, options);
  at::bmm_out(product, at::from_blob(const_cast<T*>(U), {in.positions, rows, inner}, options),
              view(V, inner, tiles, in, options));
}

// dU[e] += Z[e] V[e]^T for every position e: Z (positions, rows, tiles) in layout `z`,
// V (positions, inner, tiles) in layout `v`, dU (positions, rows, inner) contiguous. With AVX-512, V[e] is
// first transposed into `transposed` (tiles x inner) so that the product is the
// forward's register-blocked kernel: a dot-product kernel over the tiles sums its
// vector lanes once per block, which cost more than the products for the few
// hundred tiles of a chunk.
template <typename T>
void multiply_transposed_add(const T* Z, const T* V, T* dU, int64_t rows, int64_t inner, int64_t tiles,
                             const Layout& z, const Layout& v, std::vector<T>& transposed,
                             const at::TensorOptions& options) {
#if defined(ZOO_HAVE_AVX512_GEMM)
  if constexpr (std::is_same_v<T, float>) {
    const int64_t ldt = Layout(1, 1, inner, sizeof(T)).ld;  // padded like the others
    transposed.resize(tiles * ldt);
    for (int64_t e = 0; e < v.positions; ++e) {
      gemm::transpose(V + e * v.stride, inner, tiles, v.ld, transposed.data(), ldt);
      gemm::product</*Add=*/true>(rows, inner, tiles, Z + e * z.stride, z.ld, transposed.data(), ldt,
                             dU + e * rows * inner, inner);
    }
    return;
  }
#endif
  at::Tensor sum = at::from_blob(dU, {v.positions, rows, inner}, options);
  sum.baddbmm_(view(Z, rows, tiles, z, options), view(V, inner, tiles, v, options).transpose(1, 2));
}

// out (N, Cout, Ho, Wo) = the r x r stride-1 convolution of in (N, Cin, H, W) padded by
// (ph, pw), with transformed kernels U (alpha^2, Cout, Cin), plus bias when given.
template <typename F, typename T>
void convolve(const at::Tensor& in, const at::Tensor& U, int64_t ph, int64_t pw, const T* bias, at::Tensor& out) {
  constexpr int64_t positions = F::alpha * F::alpha;
  const int64_t N = in.size(0), Cin = in.size(1), H = in.size(2), W = in.size(3);
  const int64_t Cout = out.size(1), Ho = out.size(2), Wo = out.size(3);
  const Tiling<F> tiling(N, Ho, Wo, Cin + Cout, in.element_size());
  const T* x = in.const_data_ptr<T>();
  T* y = out.mutable_data_ptr<T>();
  const at::TensorOptions options = in.options();
  parallel_for_with_state(0, tiling.chunks, 1, [&](int64_t begin, int64_t end) {
    SequentialBlas sequential;
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      const int64_t u0 = tiling.first_unit(chunk), u1 = tiling.end_unit(chunk), tiles = (u1 - u0) * tiling.TW;
      const Layout v_layout(positions, Cin, tiles, sizeof(T)), m_layout(positions, Cout, tiles, sizeof(T));
      // Scratch of the running thread: slot 0 transformed input, 1 transformed output.
      const Scratch v_buffer(0, sizeof(T) * v_layout.elements()), m_buffer(1, sizeof(T) * m_layout.elements());
      transform_input(x, Cin, H, W, ph, pw, tiling, u0, u1, v_layout, v_buffer.as<T>());
      multiply(U.const_data_ptr<T>(), v_buffer.as<T>(), m_buffer.as<T>(), Cout, Cin, tiles, v_layout, m_layout,
               options);
      transform_output(m_buffer.as<T>(), Cout, Ho, Wo, tiling, u0, u1, m_layout, bias, y);
    }
  });
}

template <typename F>
void forward_with(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const Conv2dGeometry& g,
                  at::Tensor& y) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_winograd_forward", [&] {
    const at::Tensor U = transform_weight<F, scalar_t>(weight, /*for_input_grad=*/false);
    convolve<F, scalar_t>(x, U, g.ph, g.pw, bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr, y);
  });
}

template <typename F>
void backward_input_with(const at::Tensor& dy, const at::Tensor& weight, const Conv2dGeometry& g, at::Tensor& dx) {
  // dx = dy convolved with the flipped, transposed kernel, padded by r - 1 - p
  // (H = Ho + 2 (r - 1 - ph) - (r - 1)).
  AT_DISPATCH_FLOATING_TYPES(dy.scalar_type(), "zoo_conv2d_winograd_backward_input", [&] {
    const at::Tensor U = transform_weight<F, scalar_t>(weight, /*for_input_grad=*/true);
    convolve<F, scalar_t>(dy, U, F::r - 1 - g.ph, F::r - 1 - g.pw, nullptr, dx);
  });
}

template <typename F>
at::Tensor backward_weight_with(const at::Tensor& x, const at::Tensor& dy, const Conv2dGeometry& g) {
  constexpr int64_t positions = F::alpha * F::alpha;
  const int64_t N = x.size(0), C = g.C, Cout = g.Cout;
  const Tiling<F> tiling(N, g.Ho, g.Wo, C + Cout, x.element_size());
  const at::TensorOptions options = x.options();
  // One accumulator of transformed-weight gradients per thread, summed at the end.
  at::Tensor partial = at::zeros({at::get_num_threads(), positions, Cout, C}, options);
  at::Tensor dw;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_winograd_backward_weight", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* dyp = dy.const_data_ptr<scalar_t>();
    parallel_for_with_state(0, tiling.chunks, 1, [&](int64_t begin, int64_t end) {
      SequentialBlas sequential;
      std::vector<scalar_t> transposed;
      scalar_t* accumulator = partial[at::get_thread_num()].mutable_data_ptr<scalar_t>();
      for (int64_t chunk = begin; chunk < end; ++chunk) {
        const int64_t u0 = tiling.first_unit(chunk), u1 = tiling.end_unit(chunk), tiles = (u1 - u0) * tiling.TW;
        const Layout v_layout(positions, C, tiles, sizeof(scalar_t)), z_layout(positions, Cout, tiles, sizeof(scalar_t));
        // Scratch of the running thread: slot 0 transformed input, 1 transformed output gradient.
        const Scratch v_buffer(0, sizeof(scalar_t) * v_layout.elements()),
            z_buffer(1, sizeof(scalar_t) * z_layout.elements());
        transform_input(xp, C, g.H, g.W, g.ph, g.pw, tiling, u0, u1, v_layout, v_buffer.as<scalar_t>());
        transform_output_grad(dyp, Cout, g.Ho, g.Wo, tiling, u0, u1, z_layout, z_buffer.as<scalar_t>());
        multiply_transposed_add(z_buffer.as<scalar_t>(), v_buffer.as<scalar_t>(), accumulator, Cout, C, tiles,
                                z_layout, v_layout, transposed, options);
      }
    });
    dw = weight_grad_from_transformed<F, scalar_t>(partial.sum(0));
  });
  return dw;
}

}  // namespace

bool applies(const Conv2dGeometry& g, int64_t batch) {
  // Below 16 channels the products are too small for the fewer multiplications to
  // outweigh the transforms' passes over memory; below 32 tiles (one 8x8 image) the
  // kernel transform, done per call, costs about as much as the convolution.
  constexpr int64_t kMinChannels = 16, kMinTiles = 32;
  const int64_t r = g.kh;
  const int64_t tiles = batch * ((g.Ho + 1) / 2) * ((g.Wo + 1) / 2);  // m = 2 for both
  return (r == 3 || r == 5) && g.kw == r && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.ph < r &&
         g.pw < r && g.C >= kMinChannels && g.Cout >= kMinChannels && tiles >= kMinTiles;
}

namespace {

// body(F{}) with the transforms this layer's kernel size uses.
template <typename Body>
auto with_transforms(const Conv2dGeometry& g, const Body& body) {
  return g.kh == 3 ? body(F2x3{}) : body(F2x5{});
}

}  // namespace

void forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const Conv2dGeometry& g,
             at::Tensor& y) {
  with_transforms(g, [&](auto f) { forward_with<decltype(f)>(x, weight, bias, g, y); });
}

void backward_input(const at::Tensor& dy, const at::Tensor& weight, const Conv2dGeometry& g, at::Tensor& dx) {
  with_transforms(g, [&](auto f) { backward_input_with<decltype(f)>(dy, weight, g, dx); });
}

at::Tensor backward_weight(const at::Tensor& x, const at::Tensor& dy, const Conv2dGeometry& g) {
  return with_transforms(g, [&](auto f) { return backward_weight_with<decltype(f)>(x, dy, g); });
}

}  // namespace zoo::cpu::winograd
