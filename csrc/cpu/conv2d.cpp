// CPU convolution: chunks of images side by side in one column matrix.
//
// Per chunk: im2col of its images (ours), one GEMM (MKL through at::mm), and
// a scatter of the result back to NCHW. Two ways to use the threads:
//  - large layers: chunks in sequence, each helper parallel over images and
//    the GEMM threaded by MKL (big GEMMs split well);
//  - small layers (a few channels): chunks spread over threads, everything
//    for one chunk on one thread and cache-resident, MKL told to stay
//    sequential there. Calling a threaded MKL GEMM from several of our
//    threads at once serialised inside MKL and ran slower on 2 threads than
//    on 1 here; per-image parallel loops with big shared GEMMs instead paid
//    more in synchronisation than the small layers' whole work.
#include "checks.h"
#include "empty_batch.h"
#include "cpu/im2col.h"
#include "cpu/memory.h"
#include "cpu/welford.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <optional>
#include <tuple>

// MKL's per-thread override of its thread count (the C entry point; the lower-case
// names are its Fortran interface, which takes a pointer), when torch links MKL (a weak
// reference: null on builds without it, where the GEMM is sequential anyway).
extern "C" int MKL_Set_Num_Threads_Local(int) __attribute__((weak));

namespace zoo::cpu {
namespace {

// Keeps MKL sequential on this thread while alive.
class SequentialBlas {
 public:
  SequentialBlas() : previous_(MKL_Set_Num_Threads_Local ? MKL_Set_Num_Threads_Local(1) : 0) {}
  ~SequentialBlas() {
    if (MKL_Set_Num_Threads_Local) MKL_Set_Num_Threads_Local(previous_);
  }
  SequentialBlas(const SequentialBlas&) = delete;
  SequentialBlas& operator=(const SequentialBlas&) = delete;

 private:
  int previous_;
};

void check_device(const at::Tensor& x, const at::Tensor& weight) {
  TORCH_CHECK_VALUE(x.device().is_cpu() && weight.device().is_cpu(), "zoo conv2d (CPU kernel): x is on ",
                    x.device(), " and weight on ", weight.device());
}

// How the threads share the work, and how many images go in one GEMM.
struct ChunkPlan {
  bool threads_over_chunks;  // small layers: one chunk per thread at a time
  int64_t images;            // per chunk
  int64_t count;             // chunks
};

ChunkPlan plan_chunks(int64_t N, int64_t K, int64_t P, int64_t Cout, size_t element_size) {
  const int64_t per_image_flops = 2 * Cout * K * P;
  const int64_t threads = at::get_num_threads();
  int64_t images;
  bool threads_over_chunks = per_image_flops < (int64_t(4) << 20) && threads > 1;
  if (threads_over_chunks) {
    // ~2048 columns per GEMM, and at least two chunks per thread for balance.
    images = std::clamp<int64_t>(2048 / P, 1, std::max<int64_t>(1, N / (2 * threads)));
  } else {
    // Columns bounded so the column matrix stays cache-resident.
    constexpr int64_t kMaxBufferBytes = int64_t(16) << 20;
    images = std::clamp<int64_t>(kMaxBufferBytes / (std::max(K, Cout) * P * static_cast<int64_t>(element_size)), 1, N);
  }
  return {threads_over_chunks, images, (N + images - 1) / images};
}

// Runs body(n0, count) for every chunk, with the threads used as the plan says.
template <typename Body>
void for_each_chunk(const ChunkPlan& plan, int64_t N, const Body& body) {
  if (!plan.threads_over_chunks) {
    for (int64_t n0 = 0; n0 < N; n0 += plan.images) body(n0, std::min(plan.images, N - n0));
    return;
  }
  at::parallel_for(0, plan.count, 1, [&](int64_t begin, int64_t end) {
    SequentialBlas sequential;
    for (int64_t c = begin; c < end; ++c) {
      const int64_t n0 = c * plan.images;
      body(n0, std::min(plan.images, N - n0));
    }
  });
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
void im2col_chunk(const scalar_t* x, const Conv2dGeometry& g, int64_t n0, int64_t count, scalar_t* col) {
  const int64_t image = g.C * g.H * g.W, ld = count * g.P();
  at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) im2col(x + (n0 + b) * image, g, col + b * g.P(), ld);
  });
}

// dx[n0 + b] += col2im(columns of image b), in parallel over images.
template <typename scalar_t>
void col2im_chunk(const scalar_t* col, const Conv2dGeometry& g, int64_t n0, int64_t count, scalar_t* dx) {
  const int64_t image = g.C * g.H * g.W, ld = count * g.P();
  at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) col2im_add(col + b * g.P(), ld, g, dx + (n0 + b) * image);
  });
}

// db[co] = sum of dy over the batch and the output pixels of channel co.
template <typename scalar_t>
void bias_grad(const scalar_t* dy, int64_t N, int64_t Cout, int64_t P, scalar_t* db) {
  // Tiny gradients stay on one thread, where a hand-off would cost more than the sums.
  at::parallel_for(0, Cout, std::max<int64_t>(1, 32768 / (N * P)), [&](int64_t begin, int64_t end) {
    for (int64_t co = begin; co < end; ++co) {
      double total = 0;
      for (int64_t n = 0; n < N; ++n) {
        const scalar_t* plane = dy + (n * Cout + co) * P;
        // One plane in the input precision, planes summed in double.
        total += pipelined_sum<scalar_t>(P, [plane](int64_t p) { return plane[p]; });
      }
      db[co] = static_cast<scalar_t>(total);
    }
  });
}

at::Tensor matrix(void* data, int64_t rows, int64_t cols, const at::TensorOptions& options) {
  return at::from_blob(data, {rows, cols}, options);
}

at::Tensor conv2d_forward(const at::Tensor& x_in, const at::Tensor& weight_in, const std::optional<at::Tensor>& bias_in,
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  check_device(x_in, weight_in);
  const Conv2dGeometry g = checks::check_conv2d(x_in, weight_in, bias_in, stride, padding, dilation);
  if (x_in.size(0) == 0) return empty_batch::conv2d(x_in, g);
  const at::Tensor x = x_in.contiguous();
  const int64_t N = x.size(0), Cout = g.Cout, K = g.K(), P = g.P();
  const at::Tensor w = weight_in.contiguous().view({Cout, K});
  const at::Tensor bias = checks::contiguous_if_given(bias_in);
  at::Tensor y = empty_output({N, Cout, g.Ho, g.Wo}, x.options());
  const ChunkPlan plan = plan_chunks(N, K, P, Cout, x.element_size());
  const bool pointwise = g.pointwise();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_forward", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    const scalar_t* bp = bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr;
    for_each_chunk(plan, N, [&](int64_t n0, int64_t count) {
      const int64_t cols = count * P;
      // Scratch of the running thread: slot 0 columns, 1 GEMM output.
      const Scratch col_buffer(0, sizeof(scalar_t) * K * cols), out_buffer(1, sizeof(scalar_t) * Cout * cols);
      scalar_t* col = col_buffer.as<scalar_t>();
      scalar_t* out = out_buffer.as<scalar_t>();
      if (pointwise) {
        gather_images(xp, n0, count, K, P, col);  // a 1x1 kernel's columns are the pixels themselves
      } else {
        im2col_chunk(xp, g, n0, count, col);
      }
      at::Tensor out_matrix = matrix(out, Cout, cols, x.options());
      at::mm_out(out_matrix, w, matrix(col, K, cols, x.options()));
      scatter_images(out, n0, count, Cout, P, bp, yp);
    });
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward(
    const at::Tensor& grad_y, const at::Tensor& x_in, const at::Tensor& weight_in, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, std::array<bool, 3> output_mask) {
  check_device(x_in, weight_in);
  const Conv2dGeometry g = checks::check_conv2d_backward(grad_y, x_in, weight_in, stride, padding, dilation);
  if (x_in.size(0) == 0) return empty_batch::conv2d_backward(x_in, weight_in, output_mask);
  const int64_t N = x_in.size(0), Cout = g.Cout, K = g.K(), P = g.P();
  const bool need_dx = output_mask[0], need_dw = output_mask[1], need_db = output_mask[2];
  const at::Tensor x = x_in.contiguous();
  const at::Tensor dy = grad_y.contiguous();
  const at::Tensor w = weight_in.contiguous().view({Cout, K});
  const bool pointwise = g.pointwise();
  const ChunkPlan plan = plan_chunks(N, K, P, Cout, x.element_size());

  at::Tensor dx = need_dx ? empty_output({N, g.C, g.H, g.W}, x.options()).zero_() : at::empty({0}, x.options());
  // One dW accumulator per thread that runs chunks, summed at the end.
  const int64_t dw_slots = plan.threads_over_chunks ? at::get_num_threads() : 1;
  at::Tensor dw_partial = need_dw ? at::zeros({dw_slots, Cout, K}, x.options()) : at::Tensor();
  if (need_dx || need_dw) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_backward", [&] {
      const scalar_t* xp = x.const_data_ptr<scalar_t>();
      const scalar_t* dyp = dy.const_data_ptr<scalar_t>();
      scalar_t* dxp = need_dx ? dx.mutable_data_ptr<scalar_t>() : nullptr;
      for_each_chunk(plan, N, [&](int64_t n0, int64_t count) {
        const int64_t cols = count * P;
        // Scratch of the running thread: slot 0 columns, 1 the chunk's output gradient.
        const Scratch col_buffer(0, sizeof(scalar_t) * K * cols), dy_buffer(1, sizeof(scalar_t) * Cout * cols);
        scalar_t* col = col_buffer.as<scalar_t>();
        scalar_t* dy_cols = dy_buffer.as<scalar_t>();
        gather_images(dyp, n0, count, Cout, P, dy_cols);
        const at::Tensor dy_matrix = matrix(dy_cols, Cout, cols, x.options());
        at::Tensor col_matrix = matrix(col, K, cols, x.options());
        if (need_dw) {
          if (pointwise) {
            gather_images(xp, n0, count, K, P, col);
          } else {
            im2col_chunk(xp, g, n0, count, col);
          }
          dw_partial[plan.threads_over_chunks ? at::get_thread_num() : 0].addmm_(dy_matrix, col_matrix.t());  // dW += dy @ col^T
        }
        if (need_dx) {
          at::mm_out(col_matrix, w.t(), dy_matrix);  // dcol = W^T @ dy_chunk, reusing the column buffer
          if (pointwise) {
            scatter_images(col, n0, count, K, P, static_cast<const scalar_t*>(nullptr), dxp);
          } else {
            col2im_chunk(col, g, n0, count, dxp);
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

}  // namespace
}  // namespace zoo::cpu

TORCH_LIBRARY_IMPL(zoo, CPU, m) {
  m.impl("conv2d", &zoo::cpu::conv2d_forward);
  m.impl("conv2d_backward", &zoo::cpu::conv2d_backward);
}
