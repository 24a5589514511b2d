// CPU convolution: chunks of images side by side in one column matrix.
//
// For each chunk: im2col of its images (our code, in parallel over images),
// then one large GEMM (MKL through at::mm, threaded by MKL itself), then the
// result is scattered back to NCHW (in parallel). Calling the GEMM from inside
// our own parallel region instead, one small GEMM per image and thread, scaled
// poorly from 1 to 2 threads here. Chunks are large enough for an efficient
// GEMM and small enough for the column matrix to stay in cache.
#include "cpu/conv2d.h"

#include "cpu/im2col.h"
#include "cpu/memory.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

namespace zoo::cpu {
namespace {

void check_pair(const std::vector<int64_t>& v, const char* name) {
  TORCH_CHECK_VALUE(v.size() == 2, "zoo conv2d: ", name, " must have 2 values (height, width), got ", v.size());
}

ConvGeometry geometry(const at::Tensor& x, const at::Tensor& weight, const std::vector<int64_t>& stride,
                      const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation) {
  TORCH_CHECK_VALUE(x.device().is_cpu() && weight.device().is_cpu(), "zoo conv2d (CPU kernel): x is on ",
                    x.device(), " and weight on ", weight.device());
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
                   "zoo conv2d: expected float32 or float64, got ", x.scalar_type());
  TORCH_CHECK_TYPE(weight.scalar_type() == x.scalar_type(), "zoo conv2d: weight has dtype ", weight.scalar_type(),
                   " but x has dtype ", x.scalar_type());
  TORCH_CHECK_VALUE(x.dim() == 4, "zoo conv2d: expected a 4-D input (N, C, H, W), got ", x.dim(), "-D");
  TORCH_CHECK_VALUE(weight.dim() == 4, "zoo conv2d: expected a 4-D weight (Cout, Cin, kh, kw), got ",
                    weight.dim(), "-D");
  TORCH_CHECK_VALUE(weight.size(1) == x.size(1), "zoo conv2d: weight expects ", weight.size(1),
                    " input channels but x has ", x.size(1));
  check_pair(stride, "stride");
  check_pair(padding, "padding");
  check_pair(dilation, "dilation");
  for (int d = 0; d < 2; ++d) {
    TORCH_CHECK_VALUE(stride[d] > 0, "zoo conv2d: stride must be positive, got ", stride);
    TORCH_CHECK_VALUE(padding[d] >= 0, "zoo conv2d: padding must be non-negative, got ", padding);
    TORCH_CHECK_VALUE(dilation[d] > 0, "zoo conv2d: dilation must be positive, got ", dilation);
  }
  ConvGeometry g{x.size(1), x.size(2), x.size(3), weight.size(2), weight.size(3), stride[0], stride[1],
                 padding[0], padding[1], dilation[0], dilation[1], 0, 0};
  const int64_t span_h = g.dh * (g.kh - 1) + 1, span_w = g.dw * (g.kw - 1) + 1;
  g.Ho = (g.H + 2 * g.ph - span_h) / g.sh + 1;
  g.Wo = (g.W + 2 * g.pw - span_w) / g.sw + 1;
  TORCH_CHECK_VALUE(g.H + 2 * g.ph >= span_h && g.W + 2 * g.pw >= span_w,
                    "zoo conv2d: padded input ", g.H + 2 * g.ph, "x", g.W + 2 * g.pw,
                    " is smaller than the dilated kernel ", span_h, "x", span_w);
  TORCH_CHECK_VALUE(x.size(0) > 0 && g.C > 0 && weight.size(0) > 0, "zoo conv2d: empty input ", x.sizes(),
                    " or weight ", weight.sizes());
  return g;
}

bool is_pointwise(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// Images per chunk: enough columns for an efficient GEMM, with the column
// matrix bounded so it stays cache-resident.
int64_t images_per_chunk(int64_t N, int64_t K, int64_t P, int64_t Cout, size_t element_size) {
  constexpr int64_t kMaxBufferBytes = int64_t(16) << 20;
  const int64_t per_image = std::max(K, Cout) * P * static_cast<int64_t>(element_size);
  return std::clamp<int64_t>(kMaxBufferBytes / per_image, 1, N);
}

// Copies images [n0, n0 + count) of a (N, rows, P) tensor side by side into a (rows, count * P) matrix.
template <typename scalar_t>
void gather_images(const scalar_t* src, int64_t n0, int64_t count, int64_t rows, int64_t P, scalar_t* dst) {
  at::parallel_for(0, count * rows, std::max<int64_t>(1, 16384 / P), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / rows, r = i % rows;
      std::copy_n(src + ((n0 + b) * rows + r) * P, P, dst + r * count * P + b * P);
    }
  });
}

// The inverse of gather_images, adding bias[r] to every value of row r when bias is given.
template <typename scalar_t>
void scatter_images(const scalar_t* src, int64_t n0, int64_t count, int64_t rows, int64_t P, const scalar_t* bias,
                    scalar_t* dst) {
  at::parallel_for(0, count * rows, std::max<int64_t>(1, 16384 / P), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / rows, r = i % rows;
      const scalar_t* from = src + r * count * P + b * P;
      scalar_t* to = dst + ((n0 + b) * rows + r) * P;
      const scalar_t add = bias ? bias[r] : scalar_t(0);
#pragma omp simd
      for (int64_t p = 0; p < P; ++p) to[p] = from[p] + add;
    }
  });
}

// im2col of images [n0, n0 + count) side by side into col (K, count * P), in parallel over images.
template <typename scalar_t>
void im2col_chunk(const scalar_t* x, const ConvGeometry& g, int64_t n0, int64_t count, scalar_t* col) {
  const int64_t image = g.C * g.H * g.W, ld = count * g.P();
  at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) im2col(x + (n0 + b) * image, g, col + b * g.P(), ld);
  });
}

// dx[n0 + b] += col2im(columns of image b), in parallel over images.
template <typename scalar_t>
void col2im_chunk(const scalar_t* col, const ConvGeometry& g, int64_t n0, int64_t count, scalar_t* dx) {
  const int64_t image = g.C * g.H * g.W, ld = count * g.P();
  at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) col2im_add(col + b * g.P(), ld, g, dx + (n0 + b) * image);
  });
}

// db[co] = sum of dy over the batch and the output pixels of channel co.
template <typename scalar_t>
void bias_grad(const scalar_t* dy, int64_t N, int64_t Cout, int64_t P, scalar_t* db) {
  at::parallel_for(0, Cout, 1, [&](int64_t begin, int64_t end) {
    for (int64_t co = begin; co < end; ++co) {
      double total = 0;
      for (int64_t n = 0; n < N; ++n) {
        const scalar_t* plane = dy + (n * Cout + co) * P;
        scalar_t s = 0;  // one plane in the input precision, planes summed in double
#pragma omp simd reduction(+ : s)
        for (int64_t p = 0; p < P; ++p) s += plane[p];
        total += s;
      }
      db[co] = static_cast<scalar_t>(total);
    }
  });
}

at::Tensor matrix(void* data, int64_t rows, int64_t cols, const at::TensorOptions& options) {
  return at::from_blob(data, {rows, cols}, options);
}

}  // namespace

at::Tensor conv2d_forward(const at::Tensor& x_in, const at::Tensor& weight_in, const std::optional<at::Tensor>& bias_in,
                          std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation) {
  const ConvGeometry g = geometry(x_in, weight_in, stride, padding, dilation);
  const at::Tensor x = x_in.contiguous();
  const int64_t N = x.size(0), Cout = weight_in.size(0), K = g.K(), P = g.P();
  const at::Tensor w = weight_in.contiguous().view({Cout, K});
  at::Tensor bias;
  if (bias_in.has_value() && bias_in->defined()) {
    TORCH_CHECK_VALUE(bias_in->dim() == 1 && bias_in->size(0) == Cout, "zoo conv2d: bias must have shape (", Cout,
                      "), got ", bias_in->sizes());
    TORCH_CHECK_TYPE(bias_in->scalar_type() == x.scalar_type(), "zoo conv2d: bias has dtype ",
                     bias_in->scalar_type(), " but x has dtype ", x.scalar_type());
    TORCH_CHECK_VALUE(bias_in->device() == x.device(), "zoo conv2d: bias is on ", bias_in->device(),
                      " but x is on ", x.device());
    bias = bias_in->contiguous();
  }
  at::Tensor y = empty_output({N, Cout, g.Ho, g.Wo}, x.options());
  const int64_t chunk = images_per_chunk(N, K, P, Cout, x.element_size());
  const bool pointwise = is_pointwise(g);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_forward", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    const scalar_t* bp = bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr;
    // Scratch slots: 0 columns, 1 GEMM output.
    scalar_t* col = static_cast<scalar_t*>(thread_scratch(0, sizeof(scalar_t) * K * chunk * P));
    scalar_t* out = static_cast<scalar_t*>(thread_scratch(1, sizeof(scalar_t) * Cout * chunk * P));
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
      const int64_t count = std::min(chunk, N - n0), cols = count * P;
      if (pointwise) {
        gather_images(xp, n0, count, K, P, col);  // a 1x1 kernel's columns are the pixels themselves
      } else {
        im2col_chunk(xp, g, n0, count, col);
      }
      at::Tensor out_matrix = matrix(out, Cout, cols, x.options());
      at::mm_out(out_matrix, w, matrix(col, K, cols, x.options()));
      scatter_images(out, n0, count, Cout, P, bp, yp);
    }
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward(
    const at::Tensor& grad_y, const at::Tensor& x_in, const at::Tensor& weight_in, std::vector<int64_t> stride,
    std::vector<int64_t> padding, std::vector<int64_t> dilation, std::array<bool, 3> output_mask) {
  const ConvGeometry g = geometry(x_in, weight_in, stride, padding, dilation);
  const int64_t N = x_in.size(0), Cout = weight_in.size(0), K = g.K(), P = g.P();
  TORCH_CHECK_VALUE(grad_y.dim() == 4 && grad_y.size(0) == N && grad_y.size(1) == Cout && grad_y.size(2) == g.Ho &&
                        grad_y.size(3) == g.Wo,
                    "zoo conv2d: grad_y has shape ", grad_y.sizes(), " but the output has shape (", N, ", ", Cout,
                    ", ", g.Ho, ", ", g.Wo, ")");
  TORCH_CHECK_TYPE(grad_y.scalar_type() == x_in.scalar_type(), "zoo conv2d: grad_y has dtype ",
                   grad_y.scalar_type(), " but x has dtype ", x_in.scalar_type());
  const bool need_dx = output_mask[0], need_dw = output_mask[1], need_db = output_mask[2];
  const at::Tensor x = x_in.contiguous();
  const at::Tensor dy = grad_y.contiguous();
  const at::Tensor w = weight_in.contiguous().view({Cout, K});
  const bool pointwise = is_pointwise(g);
  const int64_t chunk = images_per_chunk(N, K, P, Cout, x.element_size());

  at::Tensor dx = need_dx ? at::zeros({N, g.C, g.H, g.W}, x.options()) : at::empty({0}, x.options());
  if (need_dx) advise_huge_pages(dx);
  at::Tensor dw = need_dw ? at::zeros({Cout, K}, x.options()) : at::empty({0}, x.options());
  if (need_dx || need_dw) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_backward", [&] {
      const scalar_t* xp = x.const_data_ptr<scalar_t>();
      const scalar_t* dyp = dy.const_data_ptr<scalar_t>();
      scalar_t* dxp = need_dx ? dx.mutable_data_ptr<scalar_t>() : nullptr;
      // Scratch slots: 0 columns, 1 the chunk's output gradient.
      scalar_t* col = static_cast<scalar_t*>(thread_scratch(0, sizeof(scalar_t) * K * chunk * P));
      scalar_t* dy_cols = static_cast<scalar_t*>(thread_scratch(1, sizeof(scalar_t) * Cout * chunk * P));
      for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t count = std::min(chunk, N - n0), cols = count * P;
        gather_images(dyp, n0, count, Cout, P, dy_cols);
        const at::Tensor dy_matrix = matrix(dy_cols, Cout, cols, x.options());
        at::Tensor col_matrix = matrix(col, K, cols, x.options());
        if (need_dw) {
          if (pointwise) {
            gather_images(xp, n0, count, K, P, col);
          } else {
            im2col_chunk(xp, g, n0, count, col);
          }
          dw.addmm_(dy_matrix, col_matrix.t());  // dW += dy_chunk @ col_chunk^T
        }
        if (need_dx) {
          at::mm_out(col_matrix, w.t(), dy_matrix);  // dcol = W^T @ dy_chunk, reusing the column buffer
          if (pointwise) {
            scatter_images(col, n0, count, K, P, static_cast<const scalar_t*>(nullptr), dxp);
          } else {
            col2im_chunk(col, g, n0, count, dxp);
          }
        }
      }
    });
  }
  if (need_dw) dw = dw.view(weight_in.sizes());

  at::Tensor db = at::empty({need_db ? Cout : 0}, x.options());
  if (need_db) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_bias_grad", [&] {
      bias_grad(dy.const_data_ptr<scalar_t>(), N, Cout, P, db.mutable_data_ptr<scalar_t>());
    });
  }
  return {dx, dw, db};
}

}  // namespace zoo::cpu
