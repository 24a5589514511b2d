// im2col / col2im for one image, the data movement around the convolution GEMM.
//
// col has K = C*kh*kw rows (channel, kernel row, kernel column) and P = Ho*Wo
// columns (output pixels) of one image; rows are `ld` apart (ld >= P), so
// several images can sit side by side in one column matrix.
//
// Padding is never materialised: for each kernel column the output columns
// whose input lies inside the image form one range [first, last), computed
// once per kernel column, so each output row is a zero prefix, a copy (or
// strided gather) and a zero suffix. Memory stays the column matrix alone,
// however large the padding.
#pragma once

#include "conv2d_geometry.h"

#include <algorithm>
#include <cstdint>
#include <utility>

namespace zoo::cpu {

// The output columns [first, last) whose input column ow * sw - pw + j * dw lies in [0, W).
struct ValidColumns {
  int64_t first, last;
  int64_t offset;  // input column of output column 0: j * dw - pw (negative when padded)
};

// ceil(a / b) for b > 0 and any sign of a.
inline int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b > 0 ? 1 : 0); }

inline ValidColumns valid_columns(const Conv2dGeometry& g, int64_t j) {
  const int64_t offset = j * g.dw - g.pw;
  // offset + ow * sw >= 0  and  offset + ow * sw <= W - 1
  const int64_t first = std::clamp<int64_t>(ceil_div(-offset, g.sw), 0, g.Wo);
  const int64_t last = offset > g.W - 1 ? 0 : std::clamp<int64_t>((g.W - 1 - offset) / g.sw + 1, 0, g.Wo);
  return {first, std::max(first, last), offset};
}

// The (channel, kernel row, kernel column, output row) loops shared by im2col and
// col2im: op(column row start, input row start or -1 for a padding row, the valid columns).
template <typename Op>
inline void for_each_column_row(const Conv2dGeometry& g, int64_t ld, const Op& op) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const ValidColumns cols = valid_columns(g, j);
        const int64_t row = (c * g.kh + i) * g.kw + j;
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          const int64_t h = oh * g.sh - g.ph + i * g.dh;
          const int64_t source = h >= 0 && h < g.H ? (c * g.H + h) * g.W : -1;
          op(row * ld + oh * g.Wo, source, cols);
        }
      }
}

// The output rows [first, last) whose input row oh * sh - ph + i * dh lies in [0, H)
// (valid_columns along the other axis; `offset` is the input row of output row 0).
inline ValidColumns valid_rows(const Conv2dGeometry& g, int64_t i) {
  Conv2dGeometry t = g;
  std::swap(t.W, t.H), std::swap(t.Wo, t.Ho), std::swap(t.sw, t.sh), std::swap(t.pw, t.ph), std::swap(t.dw, t.dh);
  return valid_columns(t, i);
}

// im2col of one image into col (K rows, `ld` apart); padding positions get 0.
// Each column row (c, i, j) holds Ho output rows of Wo values: the rows that read
// padding are zero-filled in two blocks, the others copied (or gathered) in one loop.
template <typename scalar_t>
void im2col(const scalar_t* x, const Conv2dGeometry& g, scalar_t* col, int64_t ld) {
  const int64_t Wo = g.Wo, sw = g.sw;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t i = 0; i < g.kh; ++i) {
      const ValidColumns rows = valid_rows(g, i);
      for (int64_t j = 0; j < g.kw; ++j) {
        const ValidColumns cols = valid_columns(g, j);
        scalar_t* d = col + ((c * g.kh + i) * g.kw + j) * ld;
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
      }
    }
}

// dx += col2im(col) for one image: every column entry is added to the input
// value it was copied from (padding positions have none).
template <typename scalar_t>
void col2im_add(const scalar_t* col, int64_t ld, const Conv2dGeometry& g, scalar_t* dx) {
  const int64_t sw = g.sw;
  for_each_column_row(g, ld, [&](int64_t from, int64_t to, const ValidColumns& cols) {
    const int64_t n = cols.last - cols.first;
    if (to < 0 || n == 0) return;
    const scalar_t* s = col + from + cols.first;
    scalar_t* d = dx + to + cols.offset + cols.first * sw;  // the input of output column `first`
    if (sw == 1) {
#pragma omp simd
      for (int64_t k = 0; k < n; ++k) d[k] += s[k];
    } else {
      for (int64_t k = 0; k < n; ++k) d[k * sw] += s[k];
    }
  });
}

}  // namespace zoo::cpu
