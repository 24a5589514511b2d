// im2col / col2im for one image, the data movement around the convolution GEMM.
//
// col has K = C*kh*kw rows (channel, kernel row, kernel column) and P = Ho*Wo
// columns (output pixels) of one image; rows are `ld` apart (ld >= P), so
// several images can sit side by side in one column matrix.
#pragma once

#include "conv2d_geometry.h"
#include "cpu/memory.h"

#include <cstdint>

namespace zoo::cpu {

// Zero n values; most calls have n == 0 (no padding there), so skip those cheaply.
template <typename scalar_t>
inline void zero(scalar_t* p, int64_t n) {
  for (int64_t k = 0; k < n; ++k) p[k] = scalar_t(0);
}

// x (C, H, W) surrounded by (ph, pw) zeros into out (C, H + 2ph, W + 2pw).
template <typename scalar_t>
void pad_image(const scalar_t* x, const Conv2dGeometry& g, scalar_t* out) {
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw;
  for (int64_t c = 0; c < g.C; ++c) {
    scalar_t* plane = out + c * Hp * Wp;
    zero(plane, g.ph * Wp);
    for (int64_t h = 0; h < g.H; ++h) {
      scalar_t* row = plane + (g.ph + h) * Wp;
      const scalar_t* src = x + (c * g.H + h) * g.W;
      zero(row, g.pw);
#pragma omp simd
      for (int64_t w = 0; w < g.W; ++w) row[g.pw + w] = src[w];
      zero(row + g.pw + g.W, g.pw);
    }
    zero(plane + (g.ph + g.H) * Wp, g.ph * Wp);
  }
}

// The (channel, kernel row, kernel column) loops shared by im2col and col2im
// over a source of (C, Hs, Ws) that every window lies inside (padding, if
// any, already applied): op(column row, first source value) per row of col.
template <typename Op>
inline void for_each_column_row(const Conv2dGeometry& g, int64_t Hs, int64_t Ws, int64_t ld, const Op& op) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t row = (c * g.kh + i) * g.kw + j;
        const int64_t source = (c * Hs + i * g.dh) * Ws + j * g.dw;
        for (int64_t oh = 0; oh < g.Ho; ++oh) op(row * ld + oh * g.Wo, source + oh * g.sh * Ws);
      }
}

// im2col of one image into col (K rows, `ld` apart). Padding is applied once
// to a copy of the image, so the copies below need no bounds checks.
template <typename scalar_t>
void im2col(const scalar_t* x, const Conv2dGeometry& g, scalar_t* col, int64_t ld) {
  const int64_t Hs = g.H + 2 * g.ph, Ws = g.W + 2 * g.pw;
  const scalar_t* src = x;
  if (g.ph > 0 || g.pw > 0) {
    scalar_t* padded = static_cast<scalar_t*>(thread_scratch(2, sizeof(scalar_t) * g.C * Hs * Ws));
    pad_image(x, g, padded);
    src = padded;
  }
  const int64_t Wo = g.Wo, sw = g.sw;
  for_each_column_row(g, Hs, Ws, ld, [&](int64_t to, int64_t from) {
    scalar_t* d = col + to;
    const scalar_t* s = src + from;
    if (sw == 1) {
#pragma omp simd
      for (int64_t ow = 0; ow < Wo; ++ow) d[ow] = s[ow];
    } else {
      for (int64_t ow = 0; ow < Wo; ++ow) d[ow] = s[ow * sw];
    }
  });
}

// dx += col2im(col) for one image. With padding, columns are summed into a
// padded scratch image whose interior is then added to dx.
template <typename scalar_t>
void col2im_add(const scalar_t* col, int64_t ld, const Conv2dGeometry& g, scalar_t* dx) {
  const int64_t Hs = g.H + 2 * g.ph, Ws = g.W + 2 * g.pw;
  const bool padded = g.ph > 0 || g.pw > 0;
  scalar_t* dst = dx;
  if (padded) {
    dst = static_cast<scalar_t*>(thread_scratch(2, sizeof(scalar_t) * g.C * Hs * Ws));
    zero(dst, g.C * Hs * Ws);
  }
  const int64_t Wo = g.Wo, sw = g.sw;
  for_each_column_row(g, Hs, Ws, ld, [&](int64_t from, int64_t to) {
    const scalar_t* s = col + from;
    scalar_t* d = dst + to;
    if (sw == 1) {
#pragma omp simd
      for (int64_t ow = 0; ow < Wo; ++ow) d[ow] += s[ow];
    } else {
      for (int64_t ow = 0; ow < Wo; ++ow) d[ow * sw] += s[ow];
    }
  });
  if (!padded) return;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t h = 0; h < g.H; ++h) {
      const scalar_t* src = dst + (c * Hs + g.ph + h) * Ws + g.pw;
      scalar_t* row = dx + (c * g.H + h) * g.W;
#pragma omp simd
      for (int64_t w = 0; w < g.W; ++w) row[w] += src[w];
    }
}

}  // namespace zoo::cpu
