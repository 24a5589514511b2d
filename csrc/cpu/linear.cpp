// CPU linear layer (zoo::linear, zoo::linear_backward): the float32 products on our AVX-512
// kernel where MKL runs slow code (own_product.h: on the AMD EPYC VM about twice MKL's speed at
// the presets' shapes), torch's products (linear_aten.h) everywhere else.
#include "checks.h"
#include "linear_aten.h"
#include "cpu/linear.h"
#include "cpu/own_product.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <optional>
#include <tuple>

namespace zoo::cpu {
namespace {

void check_device(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.device().is_cpu(), "zoo linear (CPU kernel): x is on ", x.device());
}

// Whether our kernels compute a product of this dtype with `inner` terms per output: in float32
// where they replace MKL, and never an empty product (with no inner dimension the kernels would
// leave their output unwritten).
bool own(at::ScalarType dtype, int64_t rows, int64_t inner, int64_t cols) {
  return own_products(dtype) && rows > 0 && inner > 0 && cols > 0;
}

// Whether out (rows x cols) goes to the dot-product kernel (gemm::dot_product_nt) instead of
// own_product's 12 x 32 register blocks: for less than one block of rows (a batch of one image:
// MKL's matrix-vector code took 41 us for 784 -> 1024 on the AMD EPYC VM) or half a panel of
// columns (a 10-class output layer).
bool few_rows_or_columns(int64_t rows, int64_t cols) { return rows < gemm::kRows || cols < gemm::kColumns / 2; }

// y (N x O) = x (N x C) weight^T + bias by dot products, over the threads in groups of output
// columns, or of rows where they are more (a 10-class layer on a batch of 128).
void dot_product_forward(const float* x, const float* weight, const float* bias, float* y, int64_t N, int64_t C,
                         int64_t O) {
  constexpr int64_t kTaskFlops = int64_t(1) << 18;  // per hand-off
  const int64_t column_groups = (O + gemm::kDotRows - 1) / gemm::kDotRows;
  const int64_t row_groups = (N + gemm::kDotRows - 1) / gemm::kDotRows;
  if (column_groups >= row_groups) {
    const int64_t grain = std::max<int64_t>(1, kTaskFlops / (2 * N * C * gemm::kDotRows));
    at::parallel_for(0, column_groups, grain, [&](int64_t begin, int64_t end) {
      const int64_t j0 = begin * gemm::kDotRows, j1 = std::min(O, end * gemm::kDotRows);
      gemm::dot_product_nt(N, j1 - j0, C, x, C, weight + j0 * C, C, bias ? bias + j0 : nullptr, y + j0, O);
    });
  } else {
    const int64_t grain = std::max<int64_t>(1, kTaskFlops / (2 * O * C * gemm::kDotRows));
    at::parallel_for(0, row_groups, grain, [&](int64_t begin, int64_t end) {
      const int64_t i0 = begin * gemm::kDotRows, i1 = std::min(N, end * gemm::kDotRows);
      gemm::dot_product_nt(i1 - i0, O, C, x + i0 * C, C, weight, C, bias, y + i0 * O, O);
    });
  }
}

at::Tensor linear_forward(const at::Tensor& x_in, const at::Tensor& weight_in, const std::optional<at::Tensor>& bias) {
  check_device(x_in);
  checks::check_linear(x_in, weight_in, bias);
  const int64_t N = x_in.size(0), C = x_in.size(1), O = weight_in.size(0);
  const linear::Algorithm kernel = linear::algorithm(x_in.scalar_type(), N, C, O, /*forward=*/true);
  if (kernel == linear::Algorithm::kBlas) return linear_aten::forward(x_in, weight_in, bias);
  const at::Tensor x = x_in.contiguous(), weight = weight_in.contiguous();
  const bool has_bias = bias.has_value() && bias->defined();
  at::Tensor y = at::empty({N, O}, x.options());
  const float* xp = x.const_data_ptr<float>();
  const float* wp = weight.const_data_ptr<float>();
  if (kernel == linear::Algorithm::kDot) {
    const at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
    dot_product_forward(xp, wp, has_bias ? b.const_data_ptr<float>() : nullptr, y.mutable_data_ptr<float>(), N, C, O);
  } else if (has_bias) {
    y.copy_(bias->unsqueeze(0).expand({N, O}));  // every row starts at the bias; the product adds to it
    own_product</*Add=*/true, /*TransA=*/false, /*TransB=*/true>(xp, wp, y.mutable_data_ptr<float>(), N, C, O, true);
  } else {
    own_product</*Add=*/false, /*TransA=*/false, /*TransB=*/true>(xp, wp, y.mutable_data_ptr<float>(), N, C, O,
                                                                   true);
  }
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_backward(const at::Tensor& grad_y, const at::Tensor& x_in,
                                                               const at::Tensor& weight_in,
                                                               std::array<bool, 3> output_mask) {
  check_device(x_in);
  checks::check_linear_backward(grad_y, x_in, weight_in);
  const int64_t N = x_in.size(0), C = x_in.size(1), O = weight_in.size(0);
  const at::ScalarType dtype = x_in.scalar_type();
  // dx (N x C) = dy (N x O) weight (O x C); dw (O x C) = dy^T (O x N) x (N x C).
  const auto blocks = [&](int64_t rows, int64_t inner, int64_t cols) {
    return linear::algorithm(dtype, rows, inner, cols, /*forward=*/false) == linear::Algorithm::kBlocks;
  };
  const bool own_dx = output_mask[0] && blocks(N, O, C), own_dw = output_mask[1] && blocks(O, N, C);
  auto [dx, dw, db] = linear_aten::backward(grad_y, x_in, weight_in,
                                            {output_mask[0] && !own_dx, output_mask[1] && !own_dw, output_mask[2]});
  if (!own_dx && !own_dw) return {dx, dw, db};
  const at::Tensor dy = grad_y.contiguous();
  const float* dyp = dy.const_data_ptr<float>();
  if (own_dx) {
    const at::Tensor weight = weight_in.contiguous();
    dx = at::empty({N, C}, dy.options());
    own_product(dyp, weight.const_data_ptr<float>(), dx.mutable_data_ptr<float>(), N, O, C, true);
  }
  if (own_dw) {  // dy read as the transpose it holds
    const at::Tensor x = x_in.contiguous();
    dw = at::empty({O, C}, dy.options());
    own_product</*Add=*/false, /*TransA=*/true>(dyp, x.const_data_ptr<float>(), dw.mutable_data_ptr<float>(), O, N,
                                                C, true);
  }
  return {dx, dw, db};
}

}  // namespace

namespace linear {

Algorithm algorithm(at::ScalarType dtype, int64_t rows, int64_t inner, int64_t cols, bool forward) {
  if (!own(dtype, rows, inner, cols)) return Algorithm::kBlas;
  if (few_rows_or_columns(rows, cols)) return forward ? Algorithm::kDot : Algorithm::kBlas;
  return Algorithm::kBlocks;
}

const char* name(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kDot:
      return "dot";
    case Algorithm::kBlocks:
      return "blocks";
    case Algorithm::kBlas:
      break;
  }
  return "blas";
}

}  // namespace linear
}  // namespace zoo::cpu

TORCH_LIBRARY_IMPL(zoo, CPU, m) {
  m.impl("linear", &zoo::cpu::linear_forward);
  m.impl("linear_backward", &zoo::cpu::linear_backward);
}
