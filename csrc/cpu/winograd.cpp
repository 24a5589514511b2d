// Winograd F(2x2, 3x3) on the CPU (see winograd.h for the maths).
//
// The batch is cut into chunks of tile rows; one thread takes a chunk through
// all its steps (input transform, 16 GEMMs with MKL kept sequential, output
// transform) while the chunk's transformed tiles are still in cache. Transformed
// data is laid out [16 positions][channels][tiles of the chunk], so every
// transform is a loop over the tiles of one tile row with unit-stride loads and
// stores in each of the 16 positions: it vectorises across tiles (the
// transforms are additions only), which is what makes Winograd pay here.
#include "cpu/winograd.h"

#include "cpu/blas.h"
#include "cpu/gemm.h"
#include "cpu/memory.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>
#include <vector>

namespace zoo::cpu::winograd {
namespace {

constexpr int64_t kPositions = 16;  // of the 4x4 transformed tile

// Scratch per chunk (transformed input + transformed output, all 16 positions):
// small enough that a chunk's steps find their data in the cache.
// (Measured on 192-channel layers: 256 KiB chunks ran 4x slower than 4 MiB ones,
// because every chunk streams all 16 transformed kernels, 2.4 MB there.)
constexpr int64_t kChunkBytes = int64_t(4) << 20;

// Tiles of 2x2 outputs over a batch: TH x TW per image. A "unit" is one row of
// tiles of one image (unit u: image u / TH, tile row u % TH); chunks are ranges of units.
struct Tiling {
  int64_t N, TH, TW;
  int64_t units_per_chunk, chunks;

  Tiling(int64_t N_, int64_t Ho, int64_t Wo, int64_t channels, size_t element_size)
      : N(N_), TH((Ho + 1) / 2), TW((Wo + 1) / 2) {
    const int64_t units = N * TH;
    const int64_t tile_bytes = kPositions * channels * static_cast<int64_t>(element_size);
    const int64_t by_memory = std::max<int64_t>(1, kChunkBytes / (tile_bytes * TW));
    // At least two chunks per thread, for balance, when there are enough units.
    const int64_t threads = at::get_num_threads();
    const int64_t by_balance = std::max<int64_t>(1, units / (2 * threads));
    units_per_chunk = std::min(by_memory, by_balance);
    chunks = (units + units_per_chunk - 1) / units_per_chunk;
  }

  int64_t first_unit(int64_t chunk) const { return chunk * units_per_chunk; }
  int64_t end_unit(int64_t chunk) const { return std::min(N * TH, (chunk + 1) * units_per_chunk); }
};

// Where a chunk's transformed matrices live: element (position e, channel c, tile t)
// at e * stride + c * ld + t. Both strides are padded so that they are not multiples
// of a large power of two: the transforms write (and read) 16 positions at once and the
// products walk down columns, and power-of-two strides put all those streams in the
// same few L1 sets (measured: 3x slower for the 64-channel, 336-tile chunks of a
// 32->64 layer, whose position stride was 21 x 4096 bytes).
struct Layout {
  int64_t ld, stride;

  Layout(int64_t channels, int64_t tiles, size_t element_size) {
    const int64_t line = 64 / static_cast<int64_t>(element_size);  // elements per cache line
    ld = (tiles + line - 1) / line * line;
    if ((ld / line) % 2 == 0) ld += line;  // an odd number of lines per row
    const int64_t page = 4096 / static_cast<int64_t>(element_size);
    stride = (channels * ld + page - 1) / page * page + line;  // one line past a 4 KiB boundary
  }

  int64_t elements() const { return kPositions * stride; }
};

// body(n, th, c, t0) for every tile row (image n, tile row th) of units [u0, u1) and every
// channel c < channels; t0 = (u - u0) * TW is the row's first tile in the chunk.
template <typename Body>
void for_each_tile_row(const Tiling& tiling, int64_t u0, int64_t u1, int64_t channels, const Body& body) {
  for (int64_t u = u0; u < u1; ++u)
    for (int64_t c = 0; c < channels; ++c) body(u / tiling.TH, u % tiling.TH, c, (u - u0) * tiling.TW);
}

// The even and odd columns (shifted by -pad) of input row r of a plane, zero
// outside the plane: even[k] = row[2k - pad], odd[k] = row[2k + 1 - pad], k < count.
template <typename T>
void split_row(const T* plane, int64_t rows, int64_t cols, int64_t r, int64_t pad, int64_t count, T* even, T* odd) {
  if (r < 0 || r >= rows) {
    std::fill_n(even, count, T(0));
    std::fill_n(odd, count, T(0));
    return;
  }
  const T* row = plane + r * cols;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t c0 = 2 * k - pad, c1 = c0 + 1;
    even[k] = (c0 >= 0 && c0 < cols) ? row[c0] : T(0);
    odd[k] = (c1 >= 0 && c1 < cols) ? row[c1] : T(0);
  }
}

// V[e][c][t] = (B^T d B)[e] for the 4x4 input block d of each tile t of units
// [u0, u1) (t = (u - u0) * TW + tile column), reading x (N, C, H, W) with padding (ph, pw).
template <typename T>
void transform_input(const T* x, int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw, const Tiling& tiling,
                     int64_t u0, int64_t u1, const Layout& layout, T* V) {
  const int64_t TW = tiling.TW, ld = layout.ld, plane = layout.stride;
  std::vector<T> buffer(8 * (TW + 1));
  T* even[4];
  T* odd[4];
  for (int i = 0; i < 4; ++i) {
    even[i] = buffer.data() + (2 * i) * (TW + 1);
    odd[i] = buffer.data() + (2 * i + 1) * (TW + 1);
  }
  for_each_tile_row(tiling, u0, u1, C, [&](int64_t n, int64_t th, int64_t c, int64_t t0) {
    const T* image = x + (n * C + c) * H * W;
    for (int i = 0; i < 4; ++i) split_row(image, H, W, 2 * th - ph + i, pw, TW + 1, even[i], odd[i]);
    T* out = V + c * ld + t0;
    const T *e0 = even[0], *e1 = even[1], *e2 = even[2], *e3 = even[3];
    const T *o0 = odd[0], *o1 = odd[1], *o2 = odd[2], *o3 = odd[3];
#pragma omp simd
    for (int64_t t = 0; t < TW; ++t) {
      // Columns 0..3 of the block: even[t], odd[t], even[t + 1], odd[t + 1].
      T d[4][4] = {{e0[t], o0[t], e0[t + 1], o0[t + 1]},
                   {e1[t], o1[t], e1[t + 1], o1[t + 1]},
                   {e2[t], o2[t], e2[t + 1], o2[t + 1]},
                   {e3[t], o3[t], e3[t + 1], o3[t + 1]}};
      T r[4][4];  // B^T d
      for (int j = 0; j < 4; ++j) {
        r[0][j] = d[0][j] - d[2][j];
        r[1][j] = d[1][j] + d[2][j];
        r[2][j] = d[2][j] - d[1][j];
        r[3][j] = d[1][j] - d[3][j];
      }
      for (int i = 0; i < 4; ++i) {  // (B^T d) B
        out[(4 * i + 0) * plane + t] = r[i][0] - r[i][2];
        out[(4 * i + 1) * plane + t] = r[i][1] + r[i][2];
        out[(4 * i + 2) * plane + t] = r[i][2] - r[i][1];
        out[(4 * i + 3) * plane + t] = r[i][1] - r[i][3];
      }
    }
  });
}

// Writes the even and odd columns back into output row r of a plane (cols wide).
template <typename T>
void merge_row(const T* even, const T* odd, int64_t cols, T* row) {
  const int64_t pairs = cols / 2;
  for (int64_t k = 0; k < pairs; ++k) {
    row[2 * k] = even[k];
    row[2 * k + 1] = odd[k];
  }
  if (cols % 2) row[cols - 1] = even[pairs];
}

// y = A^T m A (+ bias) for the transformed output m of each tile of units [u0, u1)
// in M[e][co][t]; y (N, Cout, Ho, Wo), tiles past the last row or column cut off.
template <typename T>
void transform_output(const T* M, int64_t Cout, int64_t Ho, int64_t Wo, const Tiling& tiling, int64_t u0, int64_t u1,
                      const Layout& layout, const T* bias, T* y) {
  const int64_t TW = tiling.TW, ld = layout.ld, plane = layout.stride;
  std::vector<T> buffer(4 * TW);
  T *y0e = buffer.data(), *y0o = y0e + TW, *y1e = y0o + TW, *y1o = y1e + TW;
  for_each_tile_row(tiling, u0, u1, Cout, [&](int64_t n, int64_t th, int64_t co, int64_t t0) {
    const T* m = M + co * ld + t0;
    const T add = bias ? bias[co] : T(0);
#pragma omp simd
    for (int64_t t = 0; t < TW; ++t) {
      T s[2][4];  // A^T m
      for (int j = 0; j < 4; ++j) {
        const T m0 = m[(0 + j) * plane + t], m1 = m[(4 + j) * plane + t];
        const T m2 = m[(8 + j) * plane + t], m3 = m[(12 + j) * plane + t];
        s[0][j] = m0 + m1 + m2;
        s[1][j] = m1 - m2 - m3;
      }
      y0e[t] = s[0][0] + s[0][1] + s[0][2] + add;  // (A^T m) A
      y0o[t] = s[0][1] - s[0][2] - s[0][3] + add;
      y1e[t] = s[1][0] + s[1][1] + s[1][2] + add;
      y1o[t] = s[1][1] - s[1][2] - s[1][3] + add;
    }
    T* out = y + (n * Cout + co) * Ho * Wo;
    merge_row(y0e, y0o, Wo, out + (2 * th) * Wo);
    if (2 * th + 1 < Ho) merge_row(y1e, y1o, Wo, out + (2 * th + 1) * Wo);
  });
}

// Z[e][co][t] = (A g A^T)[e] for the 2x2 block g of dy (N, Cout, Ho, Wo) of each
// tile of units [u0, u1), zero past the last row or column: the gradient of the
// transformed output m, given the gradient g of y = A^T m A.
template <typename T>
void transform_output_grad(const T* dy, int64_t Cout, int64_t Ho, int64_t Wo, const Tiling& tiling, int64_t u0,
                           int64_t u1, const Layout& layout, T* Z) {
  const int64_t TW = tiling.TW, ld = layout.ld, plane = layout.stride;
  std::vector<T> buffer(4 * TW);
  T *g0e = buffer.data(), *g0o = g0e + TW, *g1e = g0o + TW, *g1o = g1e + TW;
  for_each_tile_row(tiling, u0, u1, Cout, [&](int64_t n, int64_t th, int64_t co, int64_t t0) {
    const T* image = dy + (n * Cout + co) * Ho * Wo;
    split_row(image, Ho, Wo, 2 * th, 0, TW, g0e, g0o);
    split_row(image, Ho, Wo, 2 * th + 1, 0, TW, g1e, g1o);
    T* out = Z + co * ld + t0;
#pragma omp simd
    for (int64_t t = 0; t < TW; ++t) {
      const T g[2][2] = {{g0e[t], g0o[t]}, {g1e[t], g1o[t]}};
      T r[4][2];  // A g
      for (int j = 0; j < 2; ++j) {
        r[0][j] = g[0][j];
        r[1][j] = g[0][j] + g[1][j];
        r[2][j] = g[0][j] - g[1][j];
        r[3][j] = -g[1][j];
      }
      for (int i = 0; i < 4; ++i) {  // (A g) A^T
        out[(4 * i + 0) * plane + t] = r[i][0];
        out[(4 * i + 1) * plane + t] = r[i][0] + r[i][1];
        out[(4 * i + 2) * plane + t] = r[i][0] - r[i][1];
        out[(4 * i + 3) * plane + t] = -r[i][1];
      }
    }
  });
}

// U[e][o][i] = (G g G^T)[e] for the 3x3 kernels g = weight[o][i] of a (Cout, C, 3, 3)
// weight, or, for the input gradient (`for_input_grad`), of g = weight[i][o] turned by
// 180 degrees (o < C, i < Cout). G's entries are 0, 1/2 and 1, so this costs a few
// roundings; the loop runs over i, writing the 16 outputs contiguously.
template <typename T>
at::Tensor transform_weight(const at::Tensor& weight, bool for_input_grad) {
  const int64_t Cout = weight.size(0), C = weight.size(1);
  const int64_t rows = for_input_grad ? C : Cout, cols = for_input_grad ? Cout : C;
  at::Tensor U = at::empty({kPositions, rows, cols}, weight.options());
  const T* w = weight.const_data_ptr<T>();
  T* u = U.mutable_data_ptr<T>();
  const int64_t plane = rows * cols;
  // Kernel (o, i) starts at w + o * o_stride + i * i_stride; tap (a, b) is at a * 3 + b,
  // or, turned by 180 degrees, at 8 - (a * 3 + b).
  const int64_t o_stride = for_input_grad ? 9 : C * 9, i_stride = for_input_grad ? C * 9 : 9;
  at::parallel_for(0, rows, std::max<int64_t>(1, 4096 / cols), [&](int64_t begin, int64_t end) {
    std::vector<T> taps(9 * cols);  // taps[tap][i]: unit-stride loads for the vector loop below
    for (int64_t o = begin; o < end; ++o) {
    for (int64_t i = 0; i < cols; ++i)
      for (int tap = 0; tap < 9; ++tap)
        taps[tap * cols + i] = w[o * o_stride + i * i_stride + (for_input_grad ? 8 - tap : tap)];
    const T* k = taps.data();
    T* out = u + o * cols;
#pragma omp simd
    for (int64_t i = 0; i < cols; ++i) {
      T r[4][3];  // G g
      for (int b = 0; b < 3; ++b) {
        const T g0 = k[b * cols + i], g1 = k[(3 + b) * cols + i], g2 = k[(6 + b) * cols + i];
        r[0][b] = g0;
        r[1][b] = T(0.5) * (g0 + g1 + g2);
        r[2][b] = T(0.5) * (g0 - g1 + g2);
        r[3][b] = g2;
      }
      for (int a = 0; a < 4; ++a) {  // (G g) G^T
        out[(4 * a + 0) * plane + i] = r[a][0];
        out[(4 * a + 1) * plane + i] = T(0.5) * (r[a][0] + r[a][1] + r[a][2]);
        out[(4 * a + 2) * plane + i] = T(0.5) * (r[a][0] - r[a][1] + r[a][2]);
        out[(4 * a + 3) * plane + i] = r[a][2];
      }
    }
    }
  });
  return U;
}

// dw[o][i] = G^T dU[.][o][i] G for dU (16, Cout, C): the weight gradient from
// the gradient of the transformed weights.
template <typename T>
at::Tensor weight_grad_from_transformed(const at::Tensor& dU) {
  const int64_t Cout = dU.size(1), C = dU.size(2), plane = Cout * C;
  at::Tensor dw = at::empty({Cout, C, 3, 3}, dU.options());
  const T* d = dU.const_data_ptr<T>();
  T* out = dw.mutable_data_ptr<T>();
  at::parallel_for(0, plane, 256, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      double m[4][4];
      for (int e = 0; e < kPositions; ++e) m[e / 4][e % 4] = d[e * plane + k];
      double s[3][4];  // G^T m
      for (int b = 0; b < 4; ++b) {
        s[0][b] = m[0][b] + 0.5 * (m[1][b] + m[2][b]);
        s[1][b] = 0.5 * (m[1][b] - m[2][b]);
        s[2][b] = 0.5 * (m[1][b] + m[2][b]) + m[3][b];
      }
      for (int a = 0; a < 3; ++a) {  // (G^T m) G
        out[k * 9 + a * 3 + 0] = static_cast<T>(s[a][0] + 0.5 * (s[a][1] + s[a][2]));
        out[k * 9 + a * 3 + 1] = static_cast<T>(0.5 * (s[a][1] - s[a][2]));
        out[k * 9 + a * 3 + 2] = static_cast<T>(0.5 * (s[a][1] + s[a][2]) + s[a][3]);
      }
    }
  });
  return dw;
}

// out (cols x rows, row stride ldo) = in (rows x cols, row stride ldi)^T, in blocks that stay in L1.
template <typename T>
void transpose(const T* in, int64_t rows, int64_t cols, int64_t ldi, T* out, int64_t ldo) {
  constexpr int64_t kBlock = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock)
    for (int64_t c0 = 0; c0 < cols; c0 += kBlock) {
      const int64_t r1 = std::min(rows, r0 + kBlock), c1 = std::min(cols, c0 + kBlock);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) out[c * ldo + r] = in[r * ldi + c];
    }
}

// The 16 matrices (channels x tiles) of a chunk's transformed data, as a tensor.
template <typename T>
at::Tensor view(const T* data, int64_t channels, int64_t tiles, const Layout& layout,
                const at::TensorOptions& options) {
  return at::from_blob(const_cast<T*>(data), {kPositions, channels, tiles}, {layout.stride, layout.ld, 1}, options);
}

// M[e] = U[e] V[e] for the 16 positions: U (16, rows, inner) contiguous, V (16, inner,
// tiles) in layout `in`, M (16, rows, tiles) in layout `out`.
template <typename T>
void multiply(const T* U, const T* V, T* M, int64_t rows, int64_t inner, int64_t tiles, const Layout& in,
              const Layout& out, const at::TensorOptions& options) {
#if defined(ZOO_HAVE_AVX512_GEMM)
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t e = 0; e < kPositions; ++e)
      gemm::nn(rows, tiles, inner, U + e * rows * inner, inner, V + e * in.stride, in.ld, M + e * out.stride, out.ld);
    return;
  }
#endif
  at::Tensor product = view(M, rows, tiles, out, options);
  at::bmm_out(product, at::from_blob(const_cast<T*>(U), {kPositions, rows, inner}, options),
              view(V, inner, tiles, in, options));
}

// dU[e] += Z[e] V[e]^T for the 16 positions: Z (16, rows, tiles) in layout `z`, V (16,
// inner, tiles) in layout `v`, dU (16, rows, inner) contiguous. With AVX-512, V[e] is
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
    const int64_t ldt = Layout(1, inner, sizeof(T)).ld;  // padded like the others
    transposed.resize(tiles * ldt);
    for (int64_t e = 0; e < kPositions; ++e) {
      transpose(V + e * v.stride, inner, tiles, v.ld, transposed.data(), ldt);
      gemm::nn</*Add=*/true>(rows, inner, tiles, Z + e * z.stride, z.ld, transposed.data(), ldt,
                             dU + e * rows * inner, inner);
    }
    return;
  }
#endif
  at::Tensor sum = at::from_blob(dU, {kPositions, rows, inner}, options);
  sum.baddbmm_(view(Z, rows, tiles, z, options), view(V, inner, tiles, v, options).transpose(1, 2));
}

// out (N, Cout, Ho, Wo) = the 3x3 stride-1 convolution of in (N, Cin, H, Win) padded by
// (ph, pw), with transformed kernels U (16, Cout, Cin), plus bias when given.
template <typename T>
void convolve(const at::Tensor& in, const at::Tensor& U, int64_t ph, int64_t pw, const T* bias, at::Tensor& out) {
  const int64_t N = in.size(0), Cin = in.size(1), H = in.size(2), W = in.size(3);
  const int64_t Cout = out.size(1), Ho = out.size(2), Wo = out.size(3);
  const Tiling tiling(N, Ho, Wo, Cin + Cout, in.element_size());
  const T* x = in.const_data_ptr<T>();
  T* y = out.mutable_data_ptr<T>();
  const at::TensorOptions options = in.options();
  at::parallel_for(0, tiling.chunks, 1, [&](int64_t begin, int64_t end) {
    SequentialBlas sequential;
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      const int64_t u0 = tiling.first_unit(chunk), u1 = tiling.end_unit(chunk), tiles = (u1 - u0) * tiling.TW;
      const Layout v_layout(Cin, tiles, sizeof(T)), m_layout(Cout, tiles, sizeof(T));
      // Scratch of the running thread: slot 0 transformed input, 1 transformed output.
      const Scratch v_buffer(0, sizeof(T) * v_layout.elements()), m_buffer(1, sizeof(T) * m_layout.elements());
      transform_input(x, Cin, H, W, ph, pw, tiling, u0, u1, v_layout, v_buffer.as<T>());
      multiply(U.const_data_ptr<T>(), v_buffer.as<T>(), m_buffer.as<T>(), Cout, Cin, tiles, v_layout, m_layout,
               options);
      transform_output(m_buffer.as<T>(), Cout, Ho, Wo, tiling, u0, u1, m_layout, bias, y);
    }
  });
}

}  // namespace

bool applies(const Conv2dGeometry& g, int64_t batch) {
  // Below 16 channels the products are too small for the 2.25x fewer multiplications
  // to outweigh the transforms' passes over memory; below 32 tiles (one 8x8 image) the
  // kernel transform, done per call, costs about as much as the convolution.
  constexpr int64_t kMinChannels = 16, kMinTiles = 32;
  const int64_t tiles = batch * ((g.Ho + 1) / 2) * ((g.Wo + 1) / 2);
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.ph <= 2 && g.pw <= 2 &&
         g.C >= kMinChannels && g.Cout >= kMinChannels && tiles >= kMinTiles;
}

void forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const Conv2dGeometry& g,
             at::Tensor& y) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_winograd_forward", [&] {
    const at::Tensor U = transform_weight<scalar_t>(weight, /*for_input_grad=*/false);
    convolve<scalar_t>(x, U, g.ph, g.pw, bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr, y);
  });
}

void backward_input(const at::Tensor& dy, const at::Tensor& weight, const Conv2dGeometry& g, at::Tensor& dx) {
  // dx = dy convolved with the flipped, transposed kernel, padded by 2 - p (H = Ho + 2 (2 - ph) - 2).
  AT_DISPATCH_FLOATING_TYPES(dy.scalar_type(), "zoo_conv2d_winograd_backward_input", [&] {
    const at::Tensor U = transform_weight<scalar_t>(weight, /*for_input_grad=*/true);
    convolve<scalar_t>(dy, U, 2 - g.ph, 2 - g.pw, nullptr, dx);
  });
}

at::Tensor backward_weight(const at::Tensor& x, const at::Tensor& dy, const Conv2dGeometry& g) {
  const int64_t N = x.size(0), C = g.C, Cout = g.Cout;
  const Tiling tiling(N, g.Ho, g.Wo, C + Cout, x.element_size());
  const at::TensorOptions options = x.options();
  // One accumulator of transformed-weight gradients per thread, summed at the end.
  at::Tensor partial = at::zeros({at::get_num_threads(), kPositions, Cout, C}, options);
  at::Tensor dw;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_winograd_backward_weight", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* dyp = dy.const_data_ptr<scalar_t>();
    at::parallel_for(0, tiling.chunks, 1, [&](int64_t begin, int64_t end) {
      SequentialBlas sequential;
      std::vector<scalar_t> transposed;
      scalar_t* accumulator = partial[at::get_thread_num()].mutable_data_ptr<scalar_t>();
      for (int64_t chunk = begin; chunk < end; ++chunk) {
        const int64_t u0 = tiling.first_unit(chunk), u1 = tiling.end_unit(chunk), tiles = (u1 - u0) * tiling.TW;
        const Layout v_layout(C, tiles, sizeof(scalar_t)), z_layout(Cout, tiles, sizeof(scalar_t));
        // Scratch of the running thread: slot 0 transformed input, 1 transformed output gradient.
        const Scratch v_buffer(0, sizeof(scalar_t) * v_layout.elements()),
            z_buffer(1, sizeof(scalar_t) * z_layout.elements());
        transform_input(xp, C, g.H, g.W, g.ph, g.pw, tiling, u0, u1, v_layout, v_buffer.as<scalar_t>());
        transform_output_grad(dyp, Cout, g.Ho, g.Wo, tiling, u0, u1, z_layout, z_buffer.as<scalar_t>());
        multiply_transposed_add(z_buffer.as<scalar_t>(), v_buffer.as<scalar_t>(), accumulator, Cout, C, tiles,
                                z_layout, v_layout, transposed, options);
      }
    });
    dw = weight_grad_from_transformed<scalar_t>(partial.sum(0));
  });
  return dw;
}

}  // namespace zoo::cpu::winograd
