// im2col / col2im for one image, the data movement around the convolution GEMM.
//
// col has K = C*kh*kw rows (channel, kernel row, kernel column) and P = Ho*Wo
// columns (output pixels) of one image; rows are `ld` apart (ld >= P), so
// several images can sit side by side in one column matrix. For each (channel, kernel tap) the range of output
// columns whose input pixel lies inside the image is computed once, so the
// inner loops are branch-free copies (unit stride when stride is 1).
#pragma once

#include <algorithm>
#include <cstdint>

namespace zoo::cpu {

struct ConvGeometry {
  int64_t C, H, W;           // input channels and size
  int64_t kh, kw;            // kernel size
  int64_t sh, sw;            // stride
  int64_t ph, pw;            // padding
  int64_t dh, dw;            // dilation
  int64_t Ho, Wo;            // output size
  int64_t K() const { return C * kh * kw; }
  int64_t P() const { return Ho * Wo; }
};

// First output index o in [0, out) with 0 <= o*stride + offset, and one past
// the last with o*stride + offset < size: the outputs that read inside the image.
inline void valid_output_range(int64_t offset, int64_t stride, int64_t size, int64_t out,
                               int64_t& first, int64_t& last) {
  // o*stride + offset >= 0  <=>  o >= ceil(-offset / stride)
  first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  // o*stride + offset <= size - 1  <=>  o <= floor((size - 1 - offset) / stride)
  const int64_t hi = size - 1 - offset;
  last = hi < 0 ? 0 : hi / stride + 1;
  first = std::min(first, out);
  last = std::clamp(last, first, out);
}

// Zero n values; most calls have n == 0 (no padding there), so skip those cheaply.
template <typename scalar_t>
inline void zero(scalar_t* p, int64_t n) {
  if (n > 0) std::fill(p, p + n, scalar_t(0));
}

template <typename scalar_t>
void im2col(const scalar_t* x, const ConvGeometry& g, scalar_t* col, int64_t ld) {
  for (int64_t c = 0; c < g.C; ++c) {
    const scalar_t* xc = x + c * g.H * g.W;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t row_offset = i * g.dh - g.ph;
      int64_t oh0, oh1;
      valid_output_range(row_offset, g.sh, g.H, g.Ho, oh0, oh1);
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t col_offset = j * g.dw - g.pw;
        int64_t ow0, ow1;
        valid_output_range(col_offset, g.sw, g.W, g.Wo, ow0, ow1);
        scalar_t* out = col + ((c * g.kh + i) * g.kw + j) * ld;
        zero(out, oh0 * g.Wo);
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          scalar_t* orow = out + oh * g.Wo;
          const scalar_t* xrow = xc + (oh * g.sh + row_offset) * g.W;
          zero(orow, ow0);
          if (g.sw == 1 && ow1 > ow0) {
            // An inline loop: rows are short, and a memcpy call per row cost more than the copy.
            const scalar_t* src = xrow + ow0 + col_offset;
            scalar_t* dst = orow + ow0;
#pragma omp simd
            for (int64_t k = 0; k < ow1 - ow0; ++k) dst[k] = src[k];
          } else if (g.sw != 1) {
            for (int64_t ow = ow0; ow < ow1; ++ow) orow[ow] = xrow[ow * g.sw + col_offset];
          }
          zero(orow + ow1, g.Wo - ow1);
        }
        zero(out + oh1 * g.Wo, g.P() - oh1 * g.Wo);
      }
    }
  }
}

// dx += col2im(col); dx must be zeroed by the caller.
template <typename scalar_t>
void col2im_add(const scalar_t* col, int64_t ld, const ConvGeometry& g, scalar_t* dx) {
  for (int64_t c = 0; c < g.C; ++c) {
    scalar_t* dxc = dx + c * g.H * g.W;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t row_offset = i * g.dh - g.ph;
      int64_t oh0, oh1;
      valid_output_range(row_offset, g.sh, g.H, g.Ho, oh0, oh1);
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t col_offset = j * g.dw - g.pw;
        int64_t ow0, ow1;
        valid_output_range(col_offset, g.sw, g.W, g.Wo, ow0, ow1);
        const scalar_t* in = col + ((c * g.kh + i) * g.kw + j) * ld;
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const scalar_t* irow = in + oh * g.Wo;
          scalar_t* xrow = dxc + (oh * g.sh + row_offset) * g.W;
          if (g.sw == 1 && ow1 > ow0) {
            scalar_t* shifted = xrow + col_offset + ow0;  // in range: ow0 + col_offset >= 0
            const scalar_t* src = irow + ow0;
#pragma omp simd
            for (int64_t k = 0; k < ow1 - ow0; ++k) shifted[k] += src[k];
          } else if (g.sw != 1) {
            for (int64_t ow = ow0; ow < ow1; ++ow) xrow[ow * g.sw + col_offset] += irow[ow];
          }
        }
      }
    }
  }
}

}  // namespace zoo::cpu
