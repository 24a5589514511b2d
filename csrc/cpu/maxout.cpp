// CPU maxout: y[g, s] = max_j x[g, j, s] over the `pieces` runs of each group (csrc/maxout.h), and for
// training the mask x[g, j, s] == y[g, s]; the backward gives each marked piece grad / count, torch's amax
// gradient. torch's Maxout (unflatten + amax) reduces over a middle dimension of 2-4 values and its backward
// takes several passes over x's size (a comparison, a count, a division, a product); here each group's
// runs are read once, from cache for the mask, and the backward is one pass.
#include "checks.h"
#include "cpu/memory.h"
#include "cpu/parallel.h"
#include "maxout.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <vector>

namespace zoo::cpu {
namespace {

using maxout::Groups;
using maxout::nan_max;

int64_t groups_per_task(const Groups& g) { return std::max<int64_t>(1, kGrainElements / (g.pieces * g.S)); }

template <bool kMask, typename scalar_t>
void forward_kernel(const scalar_t* x, scalar_t* y, bool* mask, const Groups& q) {
  const int64_t k = q.pieces, S = q.S;
  at::parallel_for(0, q.G, groups_per_task(q), [&](int64_t begin, int64_t end) {
    if (S == 1 && k == 2) {  // (N, 2 * C), the usual maxout MLP: vectorised across groups (pairs deinterleaved)
#pragma omp simd
      for (int64_t g = begin; g < end; ++g) {
        const scalar_t a = x[2 * g], b = x[2 * g + 1];
        const scalar_t m = nan_max(a, b);
        y[g] = m;
        if constexpr (kMask) {
          mask[2 * g] = a == m;
          mask[2 * g + 1] = b == m;
        }
      }
      return;
    }
    if (S == 1) {  // other pieces: adjacent values, one group at a time (3-5x faster than the run loops below)
      for (int64_t g = begin; g < end; ++g) {
        const scalar_t* xg = x + g * k;
        scalar_t m = xg[0];
        for (int64_t j = 1; j < k; ++j) m = nan_max(m, xg[j]);
        y[g] = m;
        if constexpr (kMask) {
          for (int64_t j = 0; j < k; ++j) mask[g * k + j] = xg[j] == m;
        }
      }
      return;
    }
    for (int64_t g = begin; g < end; ++g) {
      const scalar_t* xg = x + g * k * S;
      scalar_t* yg = y + g * S;
      std::copy(xg, xg + S, yg);
      for (int64_t j = 1; j < k; ++j) {
        const scalar_t* xj = xg + j * S;
#pragma omp simd
        for (int64_t s = 0; s < S; ++s) yg[s] = nan_max(yg[s], xj[s]);
      }
      if constexpr (kMask) {
        for (int64_t j = 0; j < k; ++j) {
          const scalar_t* xj = xg + j * S;
          bool* mj = mask + (g * k + j) * S;
#pragma omp simd
          for (int64_t s = 0; s < S; ++s) mj[s] = xj[s] == yg[s];
        }
      }
    }
  });
}

template <typename scalar_t>
void backward_kernel(const scalar_t* dy, const bool* mask, scalar_t* dx, const Groups& q) {
  const int64_t k = q.pieces, S = q.S;
  at::parallel_for(0, q.G, groups_per_task(q), [&](int64_t begin, int64_t end) {
    if (S == 1 && k == 2) {  // as in the forward
#pragma omp simd
      for (int64_t g = begin; g < end; ++g) {
        const scalar_t a = static_cast<scalar_t>(mask[2 * g]), b = static_cast<scalar_t>(mask[2 * g + 1]);
        const scalar_t share = dy[g] / (a + b);
        dx[2 * g] = share * a;
        dx[2 * g + 1] = share * b;
      }
      return;
    }
    if (S == 1) {
      for (int64_t g = begin; g < end; ++g) {
        scalar_t count = 0;
        for (int64_t j = 0; j < k; ++j) count += static_cast<scalar_t>(mask[g * k + j]);
        const scalar_t share = dy[g] / count;
        for (int64_t j = 0; j < k; ++j) dx[g * k + j] = share * static_cast<scalar_t>(mask[g * k + j]);
      }
      return;
    }
    std::vector<scalar_t> share(S);  // dy / count of one group, as torch's scale_grad_by_count computes it
    for (int64_t g = begin; g < end; ++g) {
      const bool* mg = mask + g * k * S;
      const scalar_t* dyg = dy + g * S;
      scalar_t* dxg = dx + g * k * S;
      scalar_t* sh = share.data();
#pragma omp simd
      for (int64_t s = 0; s < S; ++s) sh[s] = scalar_t(0);
      for (int64_t j = 0; j < k; ++j) {
#pragma omp simd
        for (int64_t s = 0; s < S; ++s) sh[s] += static_cast<scalar_t>(mg[j * S + s]);
      }
      // count 0 (a NaN maximum, equal to nothing): dy / 0 * 0 is NaN, as in torch.
#pragma omp simd
      for (int64_t s = 0; s < S; ++s) sh[s] = dyg[s] / sh[s];
      for (int64_t j = 0; j < k; ++j) {
#pragma omp simd
        for (int64_t s = 0; s < S; ++s) dxg[j * S + s] = sh[s] * static_cast<scalar_t>(mg[j * S + s]);
      }
    }
  });
}

void check_device(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.device().is_cpu(), "zoo maxout (CPU kernel): x is on ", x.device());
}

template <bool kMask>
std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& x_in, int64_t pieces) {
  check_device(x_in);
  checks::check_maxout(x_in, pieces);
  const at::Tensor x = x_in.contiguous();
  const Groups q = maxout::groups_of(x.sizes().data(), x.dim(), pieces);
  at::Tensor y = empty_output(maxout::output_shape(x.sizes().data(), x.dim(), pieces), x.options());
  at::Tensor mask = kMask ? empty_output(x.sizes(), x.options().dtype(at::kBool)) : at::Tensor();
  if (x.numel() == 0) return {y, mask};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_maxout", [&] {
    forward_kernel<kMask>(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(),
                          kMask ? mask.mutable_data_ptr<bool>() : nullptr, q);
  });
  return {y, mask};
}

at::Tensor maxout(const at::Tensor& x, int64_t pieces) { return std::get<0>(forward<false>(x, pieces)); }

std::tuple<at::Tensor, at::Tensor> maxout_with_mask(const at::Tensor& x, int64_t pieces) {
  return forward<true>(x, pieces);
}

at::Tensor maxout_backward(const at::Tensor& grad_y, const at::Tensor& mask_in, int64_t pieces) {
  check_device(grad_y);
  checks::check_maxout_backward(grad_y, mask_in, pieces);
  const at::Tensor dy = grad_y.contiguous(), mask = mask_in.contiguous();
  at::Tensor dx = empty_output(mask.sizes(), dy.options());
  if (dx.numel() == 0) return dx;
  const Groups q = maxout::groups_of(mask.sizes().data(), mask.dim(), pieces);
  AT_DISPATCH_FLOATING_TYPES(dy.scalar_type(), "zoo_maxout_backward", [&] {
    backward_kernel(dy.const_data_ptr<scalar_t>(), mask.const_data_ptr<bool>(), dx.mutable_data_ptr<scalar_t>(), q);
  });
  return dx;
}

}  // namespace
}  // namespace zoo::cpu

TORCH_LIBRARY_IMPL(zoo, CPU, m) {
  m.impl("maxout", &zoo::cpu::maxout);
  m.impl("maxout_with_mask", &zoo::cpu::maxout_with_mask);
  m.impl("maxout_backward", &zoo::cpu::maxout_backward);
}
