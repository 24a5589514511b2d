// CPU convolution: chunks of images side by side in one column matrix.
//
// Per chunk: im2col of its images (ours), one GEMM (MKL through at::mm, or, in
// float32 on CPUs where MKL runs slow code, our AVX-512 kernel: see gemm.h), and
// a scatter of the result back to NCHW. 3x3 and 5x5 stride-1 layers with enough
// channels go to Winograd instead (winograd.h), and the forward of layers with few
// input channels to a direct kernel (direct_conv.h). Two ways to use the threads:
//  - large layers: chunks in sequence, each helper parallel over images and
//    the GEMM threaded (big GEMMs split well);
//  - small layers (a few channels): chunks spread over threads, everything
//    for one chunk on one thread and cache-resident, MKL told to stay
//    sequential there. Calling a threaded MKL GEMM from several of our
//    threads at once serialised inside MKL and ran slower on 2 threads than
//    on 1 here; per-image parallel loops with big shared GEMMs instead paid
//    more in synchronisation than the small layers' whole work.
#include "checks.h"
#include "empty_batch.h"
#include "cpu/blas.h"
#include "cpu/direct_conv.h"
#include "cpu/gemm.h"
#include "cpu/im2col.h"
#include "cpu/memory.h"
#include "cpu/own_product.h"
#include "cpu/parallel.h"
#include "cpu/pointwise_conv.h"
#include "cpu/welford.h"
#include "cpu/winograd.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <optional>
#include <tuple>
#include <type_traits>

namespace zoo::cpu {
namespace {

void check_device(const at::Tensor& x, const at::Tensor& weight) {
  TORCH_CHECK_VALUE(x.device().is_cpu() && weight.device().is_cpu(), "zoo conv2d (CPU kernel): x is on ",
                    x.device(), " and weight on ", weight.device());
}

// A piece of the batch that one GEMM handles: `count` whole images from n0, or,
// when one image's column matrix would pass the buffer budget, output rows
// [row0, row0 + rows) of the single image n0. Either way its columns are
// count * rows * Wo output pixels.
struct Chunk {
  int64_t n0, count, row0, rows;
};

// How the threads share the work, and how large a chunk is.
struct ChunkPlan {
  bool threads_over_chunks;  // small layers: one chunk per thread at a time
  int64_t images;            // per chunk (1 when an image is split into row blocks)
  int64_t rows;              // output rows per chunk (Ho for whole images)
  int64_t count;             // chunks
};

// Column (and GEMM output) bytes per chunk when images are processed in sequence:
// small enough to stay cache-resident, and a bound on the scratch a call needs.
constexpr int64_t kMaxBufferBytes = int64_t(16) << 20;

ChunkPlan plan_chunks(int64_t N, const Conv2dGeometry& g, size_t element_size) {
  const int64_t K = g.K(), P = g.P(), Cout = g.Cout;
  const int64_t per_image_flops = 2 * Cout * K * P;
  const int64_t threads = at::get_num_threads();
  if (per_image_flops < (int64_t(4) << 20) && threads > 1) {
    // ~2048 columns per GEMM, and at least two chunks per thread for balance.
    const int64_t images = std::clamp<int64_t>(2048 / P, 1, std::max<int64_t>(1, N / (2 * threads)));
    return {true, images, g.Ho, (N + images - 1) / images};
  }
  const int64_t row_bytes = std::max(K, Cout) * g.Wo * static_cast<int64_t>(element_size);
  const int64_t rows = std::clamp<int64_t>(kMaxBufferBytes / row_bytes, 1, g.Ho);
  if (rows < g.Ho) return {false, 1, rows, N * ((g.Ho + rows - 1) / rows)};
  const int64_t images = std::clamp<int64_t>(kMaxBufferBytes / (row_bytes * g.Ho), 1, N);
  return {false, images, g.Ho, (N + images - 1) / images};
}

// The c-th chunk of the plan.
Chunk chunk_at(const ChunkPlan& plan, int64_t N, int64_t Ho, int64_t c) {
  if (plan.rows < Ho) {
    const int64_t blocks = (Ho + plan.rows - 1) / plan.rows;
    const int64_t row0 = (c % blocks) * plan.rows;
    return {c / blocks, 1, row0, std::min(plan.rows, Ho - row0)};
  }
  const int64_t n0 = c * plan.images;
  return {n0, std::min(plan.images, N - n0), 0, Ho};
}

// Runs body(chunk) for every chunk, with the threads used as the plan says.
template <typename Body>
void for_each_chunk(const ChunkPlan& plan, int64_t N, int64_t Ho, const Body& body) {
  if (!plan.threads_over_chunks) {
    for (int64_t c = 0; c < plan.count; ++c) body(chunk_at(plan, N, Ho, c));
    return;
  }
  parallel_for_with_state(0, plan.count, 1, [&](int64_t begin, int64_t end) {
    SequentialBlas sequential;
    for (int64_t c = begin; c < end; ++c) body(chunk_at(plan, N, Ho, c));
  });
}

// The geometry of a chunk's output rows: the same convolution with Ho = rows and the
// padding shifted so that its output row 0 is the image's row row0 (it may go negative).
Conv2dGeometry chunk_geometry(const Conv2dGeometry& g, const Chunk& c) {
  Conv2dGeometry block = g;
  block.Ho = c.rows;
  block.ph = g.ph - c.row0 * g.sh;
  return block;
}

// Copies the chunk's part of a (N, channels, P) tensor, images side by side, into a
// (channels, count * chunk pixels) matrix.
template <typename scalar_t>
void gather_images(const scalar_t* src, const Chunk& c, int64_t channels, int64_t P, int64_t Wo, scalar_t* dst) {
  const int64_t length = c.rows * Wo, offset = c.row0 * Wo;
  at::parallel_for(0, c.count * channels, std::max<int64_t>(1, 16384 / length), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / channels, r = i % channels;
      std::copy_n(src + ((c.n0 + b) * channels + r) * P + offset, length, dst + (r * c.count + b) * length);
    }
  });
}

// The inverse of gather_images, adding bias[r] to every value of row r when bias is given.
template <typename scalar_t>
void scatter_images(const scalar_t* src, const Chunk& c, int64_t channels, int64_t P, int64_t Wo,
                    const scalar_t* bias, scalar_t* dst) {
  const int64_t length = c.rows * Wo, offset = c.row0 * Wo;
  at::parallel_for(0, c.count * channels, std::max<int64_t>(1, 16384 / length), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / channels, r = i % channels;
      const scalar_t* from = src + (r * c.count + b) * length;
      scalar_t* to = dst + ((c.n0 + b) * channels + r) * P + offset;
      const scalar_t add = bias ? bias[r] : scalar_t(0);
#pragma omp simd
      for (int64_t p = 0; p < length; ++p) to[p] = from[p] + add;
    }
  });
}

// The chunk's column matrix (K, count * chunk pixels): its pixels themselves for a
// pointwise convolution, else im2col in parallel over images.
template <typename scalar_t>
void columns(const scalar_t* x, const Conv2dGeometry& g, const Chunk& c, scalar_t* col) {
  if (g.pointwise()) {
    gather_images(x, c, g.K(), g.P(), g.Wo, col);
    return;
  }
  const Conv2dGeometry block = chunk_geometry(g, c);
  const int64_t image = g.C * g.H * g.W, length = block.P(), ld = c.count * length;
  at::parallel_for(0, c.count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) im2col(x + (c.n0 + b) * image, block, col + b * length, ld);
  });
}

// dx += the chunk's input gradient from its column gradients (the inverse of columns).
template <typename scalar_t>
void add_column_gradients(const scalar_t* col, const Conv2dGeometry& g, const Chunk& c, scalar_t* dx) {
  if (g.pointwise()) {
    scatter_images(col, c, g.K(), g.P(), g.Wo, static_cast<const scalar_t*>(nullptr), dx);  // rows are disjoint
    return;
  }
  const Conv2dGeometry block = chunk_geometry(g, c);
  const int64_t image = g.C * g.H * g.W, length = block.P(), ld = c.count * length;
  at::parallel_for(0, c.count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) col2im_add(col + b * length, ld, block, dx + (c.n0 + b) * image);
  });
}

// db[co] = sum of dy over the batch and the output pixels of channel co.
template <typename scalar_t>
void bias_grad(const scalar_t* dy, int64_t N, int64_t Cout, int64_t P, scalar_t* db) {
  // Tiny gradients stay on one thread, where a hand-off would cost more than the sums.
  at::parallel_for(0, Cout, std::max<int64_t>(1, kGrainElements / (N * P)), [&](int64_t begin, int64_t end) {
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

// The bias gradient (Cout) of a contiguous dy when needed, else an empty tensor.
at::Tensor bias_grad_if(bool needed, const at::Tensor& dy, const Conv2dGeometry& g) {
  at::Tensor db = at::empty({needed ? g.Cout : 0}, dy.options());
  if (needed) {
    AT_DISPATCH_FLOATING_TYPES(dy.scalar_type(), "zoo_conv2d_bias_grad", [&] {
      bias_grad(dy.const_data_ptr<scalar_t>(), dy.size(0), g.Cout, g.P(), db.mutable_data_ptr<scalar_t>());
    });
  }
  return db;
}

// (dx, dw, db) of an algorithm with its own gradient kernels: input_grad(dx) fills dx
// (N, C, H, W), weight_grad() returns dw; only those output_mask asks for.
template <typename InputGrad, typename WeightGrad>
std::tuple<at::Tensor, at::Tensor, at::Tensor> gradients_from(const at::Tensor& x, const at::Tensor& dy,
                                                              const Conv2dGeometry& g, std::array<bool, 3> output_mask,
                                                              const InputGrad& input_grad,
                                                              const WeightGrad& weight_grad) {
  at::Tensor dx = at::empty({0}, x.options()), dw = at::empty({0}, x.options());
  if (output_mask[0]) {
    dx = empty_output({x.size(0), g.C, g.H, g.W}, x.options());
    input_grad(dx);
  }
  if (output_mask[1]) dw = weight_grad();
  return {dx, dw, bias_grad_if(output_mask[2], dy, g)};
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
  const at::Tensor weight = weight_in.contiguous();
  const at::Tensor bias = checks::contiguous_if_given(bias_in);
  at::Tensor y = empty_output({N, Cout, g.Ho, g.Wo}, x.options());
  if (winograd::applies(g, N)) {
    winograd::forward(x, weight, bias, g, y);
    return y;
  }
  if (direct::applies(g, x.scalar_type())) {
    direct::forward(x, weight, bias, g, y);
    return y;
  }
  if (pointwise::applies(g, x.scalar_type())) {
    pointwise::forward(x, weight, bias, g, y);
    return y;
  }
  const at::Tensor w = weight.view({Cout, K});
  const ChunkPlan plan = plan_chunks(N, g, x.element_size());
  const bool own = own_products(x.scalar_type());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_forward", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    const scalar_t* bp = bias.defined() ? bias.const_data_ptr<scalar_t>() : nullptr;
    for_each_chunk(plan, N, g.Ho, [&](const Chunk& c) {
      const int64_t cols = c.count * c.rows * g.Wo;
      // Scratch of the running thread: slot 0 columns, 1 GEMM output.
      const Scratch col_buffer(0, sizeof(scalar_t) * K * cols), out_buffer(1, sizeof(scalar_t) * Cout * cols);
      scalar_t* col = col_buffer.as<scalar_t>();
      scalar_t* out = out_buffer.as<scalar_t>();
      columns(xp, g, c, col);
      if (own) {
        own_product(w.const_data_ptr<scalar_t>(), col, out, Cout, K, cols, !plan.threads_over_chunks);
      } else {
        at::Tensor out_matrix = matrix(out, Cout, cols, x.options());
        at::mm_out(out_matrix, w, matrix(col, K, cols, x.options()));
      }
      scatter_images(out, c, Cout, P, g.Wo, bp, yp);
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
  const at::Tensor weight = weight_in.contiguous();
  if (winograd::applies(g, N)) {
    return gradients_from(
        x, dy, g, output_mask, [&](at::Tensor& dx) { winograd::backward_input(dy, weight, g, dx); },
        [&] { return winograd::backward_weight(x, dy, g); });
  }
  if (pointwise::applies(g, x.scalar_type())) {
    return gradients_from(
        x, dy, g, output_mask, [&](at::Tensor& dx) { pointwise::backward_input(dy, weight, g, dx); },
        [&] { return pointwise::backward_weight(x, dy, g); });
  }
  // The direct kernel's layers take their gradients from it where it has them; the rest from im2col below.
  const bool direct_dw = need_dw && direct::applies(g, x.scalar_type());
  const bool direct_dx = need_dx && direct::applies_to_input_grad(g, x.scalar_type());
  const bool im2col_dw = need_dw && !direct_dw, im2col_dx = need_dx && !direct_dx;
  const at::Tensor w = weight.view({Cout, K});
  const ChunkPlan plan = plan_chunks(N, g, x.element_size());

  at::Tensor dx = im2col_dx ? empty_output({N, g.C, g.H, g.W}, x.options()).zero_() : at::empty({0}, x.options());
  if (direct_dx) {
    dx = empty_output({N, g.C, g.H, g.W}, x.options());
    direct::backward_input(dy, weight, g, dx);
  }
  // Our kernel takes both operands untransposed: it computes dW^T += col dy^T (with dy^T
  // materialised per chunk) and dcol = W^T dy (with W^T materialised once).
  // For the weight gradient only when the column matrix has enough rows (K) for the
  // product to outweigh transposing dy: for the first layers (K = 9 or 25) MKL, which
  // takes the transposed operand as it is, was faster.
  const bool own = own_products(x.scalar_type()), own_dw = own && K >= 64, parallel = !plan.threads_over_chunks;
  const at::Tensor w_t = own && im2col_dx ? w.t().contiguous() : at::Tensor();
  // One dW (or dW^T) accumulator per thread that runs chunks, summed at the end.
  const int64_t dw_slots = plan.threads_over_chunks ? at::get_num_threads() : 1;
  at::Tensor dw_partial =
      im2col_dw ? at::zeros(own_dw ? at::IntArrayRef{dw_slots, K, Cout} : at::IntArrayRef{dw_slots, Cout, K}, x.options())
              : at::Tensor();
  if (im2col_dx || im2col_dw) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "zoo_conv2d_backward", [&] {
      const scalar_t* xp = x.const_data_ptr<scalar_t>();
      const scalar_t* dyp = dy.const_data_ptr<scalar_t>();
      scalar_t* dxp = im2col_dx ? dx.mutable_data_ptr<scalar_t>() : nullptr;
      for_each_chunk(plan, N, g.Ho, [&](const Chunk& c) {
        const int64_t cols = c.count * c.rows * g.Wo;
        // Scratch of the running thread: slot 0 columns, 1 the chunk's output gradient.
        const Scratch col_buffer(0, sizeof(scalar_t) * K * cols), dy_buffer(1, sizeof(scalar_t) * Cout * cols);
        scalar_t* col = col_buffer.as<scalar_t>();
        scalar_t* dy_cols = dy_buffer.as<scalar_t>();
        gather_images(dyp, c, Cout, P, g.Wo, dy_cols);
        const at::Tensor dy_matrix = matrix(dy_cols, Cout, cols, x.options());
        at::Tensor col_matrix = matrix(col, K, cols, x.options());
        const int64_t slot = plan.threads_over_chunks ? at::get_thread_num() : 0;
        if (im2col_dw) {
          columns(xp, g, c, col);
          if (own_dw) {
            const Scratch dy_t_buffer(2, sizeof(scalar_t) * cols * Cout);  // slot 2: dy^T
            scalar_t* dy_t = dy_t_buffer.as<scalar_t>();
            gemm::transpose(dy_cols, Cout, cols, cols, dy_t, Cout);
            own_product</*Add=*/true>(col, dy_t, dw_partial[slot].mutable_data_ptr<scalar_t>(), K, cols, Cout,
                                      parallel);
          } else {
            dw_partial[slot].addmm_(dy_matrix, col_matrix.t());  // dW += dy @ col^T
          }
        }
        if (im2col_dx) {  // dcol = W^T @ dy_chunk, reusing the column buffer
          if (own) {
            own_product(w_t.const_data_ptr<scalar_t>(), dy_cols, col, K, Cout, cols, parallel);
          } else {
            at::mm_out(col_matrix, w.t(), dy_matrix);
          }
          add_column_gradients(col, g, c, dxp);
        }
      });
    });
  }
  at::Tensor dw = at::empty({0}, x.options());
  if (direct_dw) dw = direct::backward_weight(x, dy, g);
  if (im2col_dw) dw = (own_dw ? dw_partial.sum(0).t() : dw_partial.sum(0)).contiguous().view(weight_in.sizes());

  return {dx, dw, bias_grad_if(need_db, dy, g)};
}

}  // namespace
}  // namespace zoo::cpu

TORCH_LIBRARY_IMPL(zoo, CPU, m) {
  m.impl("conv2d", &zoo::cpu::conv2d_forward);
  m.impl("conv2d_backward", &zoo::cpu::conv2d_backward);
}
