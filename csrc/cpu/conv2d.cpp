// CPU convolution: per image, im2col into a per-thread buffer, then one GEMM.
//
// Images are spread over threads (at::parallel_for); the GEMM inside runs
// single-threaded there, which for the zoo's small images beats splitting one
// GEMM across threads. A 1x1 kernel with stride 1 and no padding needs no
// im2col: the image itself is the column matrix.
#include "cpu/conv2d.h"

#include "cpu/im2col.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

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

bool is_pointwise(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

}  // namespace

at::Tensor conv2d_forward(const at::Tensor& x_in, const at::Tensor& weight_in, const std::optional<at::Tensor>& bias,
                          std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation) {
  const ConvGeometry g = geometry(x_in, weight_in, stride, padding, dilation);
  const at::Tensor x = x_in.contiguous();
  const int64_t N = x.size(0), Cout = weight_in.size(0), K = g.K(), P = g.P();
  const at::Tensor w = weight_in.contiguous().view({Cout, K});
  at::Tensor bias_col;
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == Cout, "zoo conv2d: bias must have shape (", Cout,
                      "), got ", bias->sizes());
    TORCH_CHECK_TYPE(bias->scalar_type() == x.scalar_type(), "zoo conv2d: bias has dtype ", bias->scalar_type(),
                     " but x has dtype ", x.scalar_type());
    TORCH_CHECK_VALUE(bias->device() == x.device(), "zoo conv2d: bias is on ", bias->device(), " but x is on ",
                      x.device());
    bias_col = bias->view({Cout, 1}).expand({Cout, P});
  }
  at::Tensor y = at::empty({N, Cout, g.Ho, g.Wo}, x.options());
  const bool pointwise = is_pointwise(g);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_forward", [&] {
    at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
      at::Tensor col = pointwise ? at::Tensor() : at::empty({K, P}, x.options());
      for (int64_t n = begin; n < end; ++n) {
        at::Tensor xn = x[n].view({g.C, g.H * g.W});
        if (!pointwise) im2col(xn.const_data_ptr<scalar_t>(), g, col.mutable_data_ptr<scalar_t>());
        const at::Tensor& columns = pointwise ? xn : col;
        at::Tensor yn = y[n].view({Cout, P});
        if (bias_col.defined()) {
          at::addmm_out(yn, bias_col, w, columns);
        } else {
          at::mm_out(yn, w, columns);
        }
      }
    });
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

  at::Tensor dx = need_dx ? at::zeros({N, g.C, g.H, g.W}, x.options()) : at::empty({0}, x.options());
  // One dW accumulator per thread, summed at the end (no shared writes).
  at::Tensor dw_partial = need_dw ? at::zeros({at::get_num_threads(), Cout, K}, x.options()) : at::Tensor();
  if (need_dx || need_dw) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_backward", [&] {
      at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
        at::Tensor col = pointwise ? at::Tensor() : at::empty({K, P}, x.options());
        at::Tensor dw_acc = need_dw ? dw_partial[at::get_thread_num()] : at::Tensor();
        for (int64_t n = begin; n < end; ++n) {
          const at::Tensor dyn = dy[n].view({Cout, P});
          if (need_dw) {
            at::Tensor xn = x[n].view({g.C, g.H * g.W});
            if (!pointwise) im2col(xn.const_data_ptr<scalar_t>(), g, col.mutable_data_ptr<scalar_t>());
            const at::Tensor& columns = pointwise ? xn : col;
            dw_acc.addmm_(dyn, columns.t());  // dW += dy_n @ col_n^T
          }
          if (need_dx) {
            at::Tensor dxn = dx[n].view({g.C, g.H * g.W});
            if (pointwise) {
              at::mm_out(dxn, w.t(), dyn);
            } else {
              at::mm_out(col, w.t(), dyn);  // dcol = W^T @ dy_n, reusing the column buffer
              col2im_add(col.const_data_ptr<scalar_t>(), g, dxn.mutable_data_ptr<scalar_t>());
            }
          }
        }
      });
    });
  }
  at::Tensor dw = need_dw ? dw_partial.sum(0).view(weight_in.sizes()) : at::empty({0}, x.options());

  at::Tensor db = at::empty({need_db ? Cout : 0}, x.options());
  if (need_db) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_bias_grad", [&] {
      bias_grad(dy.const_data_ptr<scalar_t>(), N, Cout, P, db.mutable_data_ptr<scalar_t>());
    });
  }
  return {dx, dw, db};
}

}  // namespace zoo::cpu
