// im2col / col2im for one image, the data movement around the convolution GEMM.
//
// col has K = C*kh*kw rows (channel, kernel row, kernel column) and P = Ho*Wo
// columns (output pixels) of one image; rows are `ld` apart (ld >= P), so
// several images can sit side by side in one column matrix.
//
// Padding is never materialised: for each kernel tap the output rows and the
// output columns whose input lies inside the image form one range each
// (valid_range), so a column row is zero blocks around rows that are a zero
// prefix, a copy (or strided gather) and a zero suffix. Memory stays the
// column matrix alone, however large the padding.
#pragma once

#include "conv2d_geometry.h"

#include <algorithm>
#include <cstdint>

namespace zoo::cpu {

// The output positions [first, last) along one axis whose input position
// offset + o * stride lies in [0, size); offset = k * dilation - padding is the
// input position of output 0 for kernel tap k (negative when padded).
struct ValidRange {
  int64_t first, last;
  int64_t offset;
};

// ceil(a / b) for b > 0 and any sign of a.
inline int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b > 0 ? 1 : 0); }

inline ValidRange valid_range(int64_t size, int64_t out_size, int64_t stride, int64_t offset) {
  const int64_t first = std::clamp<int64_t>(ceil_div(-offset, stride), 0, out_size);
  const int64_t last = offset > size - 1 ? 0 : std::clamp<int64_t>((size - 1 - offset) / stride + 1, 0, out_size);
  return {first, std::max(first, last), offset};
}

// op(c, column row, valid output rows, valid output columns) for every kernel tap (c, i, j),
// the traversal im2col and col2im share.
template <typename Op>
inline void for_each_kernel_tap(const Conv2dGeometry& g, const Op& op) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t i = 0; i < g.kh; ++i) {
      const ValidRange rows = valid_range(g.H, g.Ho, g.sh, i * g.dh - g.ph);
      for (int64_t j = 0; j < g.kw; ++j)
        op(c, (c * g.kh + i) * g.kw + j, rows, valid_range(g.W, g.Wo, g.sw, j * g.dw - g.pw));
    }
}

// im2col of one image into col (K rows, `ld` apart); padding positions get 0.
// Each column row holds Ho output rows of Wo values: the rows that read padding
// are zero-filled in two blocks, the others copied (or gathered) in one loop.
template <typename scalar_t>
void im2col(const scalar_t* x, const Conv2dGeometry& g, scalar_t* col, int64_t ld) {
  const int64_t Wo = g.Wo, sw = g.sw;
  for_each_kernel_tap(g, [&](int64_t c, int64_t row, const ValidRange& rows, const ValidRange& cols) {
    scalar_t* d = col + row * ld;
    std::fill_n(d, rows.first * Wo, scalar_t(0));
    std::fill_n(d + rows.last * Wo, (g.Ho - rows.last) * Wo, scalar_t(0));
    const int64_t n = cols.last - cols.first;
    for (int64_t oh = rows.first; oh < rows.last; ++oh) {
      scalar_t* out = d + oh * Wo;
      std::fill_n(out, cols.first, scalar_t(0));
      std::fill_n(out + cols.last, Wo - cols.last, scalar_t(0));
      if (n == 0) continue;
      // The input of output column `first` in input row oh * sh + rows.offset.
      const scalar_t* s = x + (c * g.H + oh * g.sh + rows.offset) * g.W + cols.offset + cols.first * sw;
      scalar_t* valid = out + cols.first;
      if (sw == 1) {
#pragma omp simd
        for (int64_t k = 0; k < n; ++k) valid[k] = s[k];
      } else {
        for (int64_t k = 0; k < n; ++k) valid[k] = s[k * sw];
      }
    }
  });
}

// dx += col2im(col) for one image: every column entry is added to the input
// value it was copied from (padding positions have none).
template <typename scalar_t>
void col2im_add(const scalar_t* col, int64_t ld, const Conv2dGeometry& g, scalar_t* dx) {
  const int64_t Wo = g.Wo, sw = g.sw;
  for_each_kernel_tap(g, [&](int64_t c, int64_t row, const ValidRange& rows, const ValidRange& cols) {
    const int64_t n = cols.last - cols.first;
    if (n == 0) return;
    for (int64_t oh = rows.first; oh < rows.last; ++oh) {
      const scalar_t* s = col + row * ld + oh * Wo + cols.first;
      // The input of output column `first` in input row oh * sh + rows.offset.
      scalar_t* d = dx + (c * g.H + oh * g.sh + rows.offset) * g.W + cols.offset + cols.first * sw;
      if (sw == 1) {
#pragma omp simd
        for (int64_t k = 0; k < n; ++k) d[k] += s[k];
      } else {
        for (int64_t k = 0; k < n; ++k) d[k * sw] += s[k];
      }
    }
  });
}

}  // namespace zoo::cpu
