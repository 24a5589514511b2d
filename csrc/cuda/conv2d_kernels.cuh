// Conv2d (groups = 1) CUDA kernels: raw-pointer host launchers (no torch headers).
// Safe to include from host-only C++ (needs the CUDA include directory).
//
// Tensors are contiguous NCHW: x (N, Cin, H, W), weight (Cout, Cin, kh, kw) viewed as a
// row-major (Cout, K) matrix with K = Cin * kh * kw, y (N, Cout, Hout, Wout), L = Hout * Wout.
// scalar_t is float or double.
//
// The conv launchers process a chunk of B images (pass pointers to the chunk's first
// image). They need a scratch buffer of conv2d_*_workspace_elems(shape, B) elements of
// scalar_t (may be nullptr when that is 0): it holds the im2col matrix (K x L per image,
// skipped for 1x1 / stride 1 / no padding convolutions) and split-K partial products.
// The size depends on B, so when the last chunk is smaller size the buffer as the max
// over the chunk sizes used.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace zoo::cuda::kernels {

struct Conv2dShape {
  int64_t Cin, H, W;        // input (per image)
  int64_t Cout, kh, kw;     // weight
  int64_t sh, sw;           // stride
  int64_t ph, pw;           // padding
  int64_t dh, dw;           // dilation
  int64_t Hout, Wout;       // output, (H + 2 * ph - dh * (kh - 1) - 1) / sh + 1, etc.

  int64_t K() const { return Cin * kh * kw; }
  int64_t L() const { return Hout * Wout; }
  // x itself is the im2col matrix: no copy needed.
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

// --- building blocks ----------------------------------------------------------

// col[b][(c * kh + i) * kw + j][ho * Wout + wo] = x[b][c][ho*sh - ph + i*dh][wo*sw - pw + j*dw] (0 outside).
template <typename scalar_t>
void conv2d_im2col(const scalar_t* x, int64_t B, const Conv2dShape& s, scalar_t* col, cudaStream_t stream);

// Adjoint of im2col: dx[b][c][h][w] = sum of the col entries that read x[b][c][h][w].
// Overwrites dx (positions no window touches get 0); deterministic (gather, no atomics).
template <typename scalar_t>
void conv2d_col2im(const scalar_t* col, int64_t B, const Conv2dShape& s, scalar_t* dx, cudaStream_t stream);

// --- convolution passes (per chunk of B images) ----------------------------------

template <typename scalar_t>
size_t conv2d_forward_workspace_elems(const Conv2dShape& s, int64_t B);

// y = W * col(x) + bias (bias may be nullptr).
template <typename scalar_t>
void conv2d_forward(const scalar_t* x, const scalar_t* weight, const scalar_t* bias, scalar_t* y, int64_t B,
                    const Conv2dShape& s, scalar_t* workspace, cudaStream_t stream);

template <typename scalar_t>
size_t conv2d_backward_input_workspace_elems(const Conv2dShape& s, int64_t B);

// dx = col2im(W^T * dy). Overwrites dx.
template <typename scalar_t>
void conv2d_backward_input(const scalar_t* grad_y, const scalar_t* weight, scalar_t* grad_x, int64_t B,
                           const Conv2dShape& s, scalar_t* workspace, cudaStream_t stream);

template <typename scalar_t>
size_t conv2d_backward_weight_workspace_elems(const Conv2dShape& s, int64_t B);

// dW (Cout x K) = [accumulate ? dW : 0] + sum over the chunk's images of dy_b * col(x_b)^T.
template <typename scalar_t>
void conv2d_backward_weight(const scalar_t* grad_y, const scalar_t* x, scalar_t* grad_w, int64_t B,
                            const Conv2dShape& s, bool accumulate, scalar_t* workspace, cudaStream_t stream);

// Bytes of scratch for conv2d_backward_bias (0 if none is needed).
template <typename scalar_t>
size_t conv2d_backward_bias_workspace_bytes(int64_t N, int64_t Cout, int64_t L);

// db[co] = sum over n, l of dy[n][co][l], for the whole batch at once (no chunking needed).
template <typename scalar_t>
void conv2d_backward_bias(const scalar_t* grad_y, int64_t N, int64_t Cout, int64_t L, scalar_t* grad_b,
                          void* workspace, cudaStream_t stream);

// --- GEMM ------------------------------------------------------------------------

// Batched, batch-reduced GEMM with optional split-K, used by the passes above:
//   C_z = [accumulate ? C_z : 0] + bias[row] + sum_{r < red} op(A)_{z,r} * op(B)_{z,r}
// op(A) is M x K: element (i, k) at A[i * lda + k], or A[k * lda + i] when trans_a.
// op(B) is K x N: element (k, j) at B[k * ldb + j], or B[j * ldb + k] when trans_b.
// A_{z,r} = A + z * a_batch + r * a_red (same for B); C_z = C + z * c_batch, row-major ldc.
template <typename scalar_t>
struct GemmDesc {
  int64_t M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = false;
  const scalar_t* A = nullptr;
  int64_t lda = 0, a_batch = 0, a_red = 0;
  const scalar_t* B = nullptr;
  int64_t ldb = 0, b_batch = 0, b_red = 0;
  scalar_t* C = nullptr;
  int64_t ldc = 0, c_batch = 0;
  const scalar_t* bias = nullptr;  // per row of C, may be nullptr
  int64_t batches = 1;             // z
  int64_t red = 1;                 // r
  bool accumulate = false;
};

// Scratch (elements of scalar_t) the GEMM wants for split-K partials (0 = no split).
template <typename scalar_t>
size_t gemm_workspace_elems(const GemmDesc<scalar_t>& d);

template <typename scalar_t>
void gemm(const GemmDesc<scalar_t>& d, scalar_t* workspace, cudaStream_t stream);

}  // namespace zoo::cuda::kernels
