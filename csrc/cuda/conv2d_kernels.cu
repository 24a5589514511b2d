// Conv2d CUDA kernels (groups = 1). See conv2d_kernels.cuh for the contract.
//
// Design: explicit im2col + a tiled shared-memory GEMM of our own.
//  * forward:         y_b  = W (Cout x K) * col_b (K x L) + bias       (batched over b)
//  * backward-input:  dcol_b = W^T (K x Cout) * dy_b (Cout x L); dx_b = col2im(dcol_b)
//  * backward-weight: dW (Cout x K) = sum_b dy_b (Cout x L) * col_b^T (L x K)
//    (the sum over b is folded into the GEMM's reduction loop, not separate launches)
//  * bias grad:       per-channel sum over (N, L) with the shared block-reduction kernels.
// The GEMM uses 64x64 output tiles, 16-deep K slices in shared memory and a 4x4
// register micro-tile per thread (256 threads). When there are too few output tiles to
// fill the GPU (small layers, batch 1, dW) the reduction is split over blocks (split-K)
// into a workspace and summed by a second kernel; no atomics, so results are deterministic.
#include "conv2d_kernels.cuh"

#include "common.cuh"

namespace zoo::cuda::kernels {
namespace {

using namespace zoo::cuda::detail;

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


// ---------------------------------------------------------------------------
// im2col / col2im
// ---------------------------------------------------------------------------

constexpr int kColThreads = 256;

inline int64_t elementwise_blocks(int64_t total, int threads) {
  // Grid-stride kernels: cap the grid, every block loops.
  return clamp_val<int64_t>(ceil_div(total, threads), 1, static_cast<int64_t>(num_sms()) * 64);
}

template <typename T>
__global__ void __launch_bounds__(kColThreads)
im2col_kernel(const T* __restrict__ x, int64_t B, Conv2dGeometry s, T* __restrict__ col) {
  const int64_t L = s.Ho * s.Wo;
  const int64_t total = B * s.C * L;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  // One thread per (b, c, ho, wo): writes its kh*kw column entries. Consecutive threads
  // have consecutive wo, so the writes (stride 1 in L) are coalesced.
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += step) {
    const int64_t l = idx % L;
    const int64_t bc = idx / L;  // b * Cin + c
    const int ho = static_cast<int>(l / s.Wo);
    const int wo = static_cast<int>(l - static_cast<int64_t>(ho) * s.Wo);
    const T* xp = x + bc * s.H * s.W;
    T* cp = col + bc * s.kh * s.kw * L + l;  // row (c*kh + i)*kw + j of image b
    const int H = static_cast<int>(s.H), W = static_cast<int>(s.W);
    const int h0 = ho * static_cast<int>(s.sh) - static_cast<int>(s.ph);
    const int w0 = wo * static_cast<int>(s.sw) - static_cast<int>(s.pw);
    for (int i = 0; i < s.kh; ++i) {
      const int h = h0 + i * static_cast<int>(s.dh);
      const bool h_ok = h >= 0 && h < H;
      for (int j = 0; j < s.kw; ++j) {
        const int w = w0 + j * static_cast<int>(s.dw);
        *cp = (h_ok && w >= 0 && w < W) ? xp[static_cast<int64_t>(h) * W + w] : T(0);
        cp += L;
      }
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kColThreads)
col2im_kernel(const T* __restrict__ col, int64_t B, Conv2dGeometry s, T* __restrict__ dx) {
  const int64_t HW = s.H * s.W;
  const int64_t L = s.Ho * s.Wo;
  const int64_t total = B * s.C * HW;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  const int kh = static_cast<int>(s.kh), kw = static_cast<int>(s.kw);
  const int sh = static_cast<int>(s.sh), sw = static_cast<int>(s.sw);
  const int dh = static_cast<int>(s.dh), dw = static_cast<int>(s.dw);
  const int Hout = static_cast<int>(s.Ho), Wout = static_cast<int>(s.Wo);
  // One thread per input element gathers every (i, j, ho, wo) with
  // ho*sh - ph + i*dh == h and wo*sw - pw + j*dw == w.
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += step) {
    const int64_t bc = idx / HW;
    const int64_t hw = idx - bc * HW;
    const int h = static_cast<int>(hw / s.W);
    const int w = static_cast<int>(hw - static_cast<int64_t>(h) * s.W);
    const T* cp = col + bc * s.kh * s.kw * L;
    T acc = T(0);
    for (int i = 0; i < kh; ++i) {
      const int hp = h + static_cast<int>(s.ph) - i * dh;  // = ho * sh
      if (hp < 0) break;  // decreases with i
      if (hp % sh != 0) continue;
      const int ho = hp / sh;
      if (ho >= Hout) continue;
      for (int j = 0; j < kw; ++j) {
        const int wp = w + static_cast<int>(s.pw) - j * dw;
        if (wp < 0) break;
        if (wp % sw != 0) continue;
        const int wo = wp / sw;
        if (wo >= Wout) continue;
        acc += cp[static_cast<int64_t>(i * kw + j) * L + static_cast<int64_t>(ho) * Wout + wo];
      }
    }
    dx[idx] = acc;
  }
}

// ---------------------------------------------------------------------------
// GEMM
// ---------------------------------------------------------------------------

constexpr int kBM = 64;   // rows of C per block
constexpr int kBN = 64;   // cols of C per block
constexpr int kBK = 16;   // reduction slice held in shared memory
constexpr int kGemmThreads = 256;
constexpr int kTM = kBM / 16;  // 4 rows per thread (16 x 16 thread grid)
constexpr int kTN = kBN / 16;  // 4 cols per thread

template <typename T>
struct GemmKernelArgs {
  int64_t M, N, K;
  const T* A;
  int64_t lda, a_batch, a_red;
  const T* B;
  int64_t ldb, b_batch, b_red;
  T* C;
  int64_t ldc, c_batch, c_split;
  const T* bias;
  int64_t batches, red;
  int splits;
  bool accumulate;
};

// Thread (tx, ty) of the 16x16 grid owns rows ty + 16*r and cols tx + 16*q of the tile:
// strided ownership makes the shared-memory reads conflict-free/broadcast and the
// global stores of 16 neighbouring threads contiguous.
template <typename T, bool kTransA, bool kTransB>
__global__ void __launch_bounds__(kGemmThreads) gemm_kernel(GemmKernelArgs<T> p) {
  // Both tiles are stored "reduction index last" with one element of padding, which
  // keeps the stores and the inner-loop reads free of bank conflicts.
  __shared__ T As[kBM][kBK + 1];
  __shared__ T Bs[kBN][kBK + 1];

  const int tid = threadIdx.x;
  const int tx = tid % 16;
  const int ty = tid / 16;
  const int64_t tiles_m = ceil_div(p.M, kBM);
  const int64_t k_tiles = ceil_div(p.K, kBK);
  const int64_t total_steps = p.red * k_tiles;  // (r, k-slice) pairs
  const int64_t zs = p.batches * p.splits;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kBN;

  for (int64_t z = blockIdx.z; z < zs; z += gridDim.z) {
    const int64_t b = z / p.splits;
    const int64_t split = z - b * p.splits;
    const int64_t step_begin = total_steps * split / p.splits;
    const int64_t step_end = total_steps * (split + 1) / p.splits;
    const T* Ab = p.A + b * p.a_batch;
    const T* Bb = p.B + b * p.b_batch;
    T* Cz = p.C + b * p.c_batch + split * p.c_split;

    for (int64_t tm = blockIdx.y; tm < tiles_m; tm += gridDim.y) {
      const int64_t row0 = tm * kBM;
      T acc[kTM][kTN];
#pragma unroll
      for (int r = 0; r < kTM; ++r)
#pragma unroll
        for (int q = 0; q < kTN; ++q) acc[r][q] = T(0);

      int64_t r_idx = 0, kt = 0;
      if (step_begin < step_end) {  // (k_tiles may be 0 when K == 0)
        r_idx = step_begin / k_tiles;
        kt = step_begin - r_idx * k_tiles;
      }
      for (int64_t st = step_begin; st < step_end; ++st) {
        const int64_t k0 = kt * kBK;
        const T* Ar = Ab + r_idx * p.a_red;
        const T* Br = Bb + r_idx * p.b_red;

        // ---- stage A tile (kBM x kBK) ----
        if (!kTransA) {  // k contiguous: 16 threads read one 16-wide row segment
          const int kk = tid % kBK;
          const int64_t k = k0 + kk;
#pragma unroll
          for (int pass = 0; pass < kBM / (kGemmThreads / kBK); ++pass) {
            const int ii = tid / kBK + pass * (kGemmThreads / kBK);
            const int64_t i = row0 + ii;
            As[ii][kk] = (i < p.M && k < p.K) ? Ar[i * p.lda + k] : T(0);
          }
        } else {  // i contiguous: 64 threads read one 64-wide column segment
          const int ii = tid % kBM;
          const int64_t i = row0 + ii;
#pragma unroll
          for (int pass = 0; pass < kBK / (kGemmThreads / kBM); ++pass) {
            const int kk = tid / kBM + pass * (kGemmThreads / kBM);
            const int64_t k = k0 + kk;
            As[ii][kk] = (i < p.M && k < p.K) ? Ar[k * p.lda + i] : T(0);
          }
        }
        // ---- stage B tile (kBK x kBN), stored transposed as Bs[j][k] ----
        if (!kTransB) {  // j contiguous
          const int jj = tid % kBN;
          const int64_t j = col0 + jj;
#pragma unroll
          for (int pass = 0; pass < kBK / (kGemmThreads / kBN); ++pass) {
            const int kk = tid / kBN + pass * (kGemmThreads / kBN);
            const int64_t k = k0 + kk;
            Bs[jj][kk] = (j < p.N && k < p.K) ? Br[k * p.ldb + j] : T(0);
          }
        } else {  // k contiguous
          const int kk = tid % kBK;
          const int64_t k = k0 + kk;
#pragma unroll
          for (int pass = 0; pass < kBN / (kGemmThreads / kBK); ++pass) {
            const int jj = tid / kBK + pass * (kGemmThreads / kBK);
            const int64_t j = col0 + jj;
            Bs[jj][kk] = (j < p.N && k < p.K) ? Br[j * p.ldb + k] : T(0);
          }
        }
        __syncthreads();

#pragma unroll
        for (int kk = 0; kk < kBK; ++kk) {
          T a[kTM], bv[kTN];
#pragma unroll
          for (int r = 0; r < kTM; ++r) a[r] = As[ty + 16 * r][kk];
#pragma unroll
          for (int q = 0; q < kTN; ++q) bv[q] = Bs[tx + 16 * q][kk];
#pragma unroll
          for (int r = 0; r < kTM; ++r)
#pragma unroll
            for (int q = 0; q < kTN; ++q) acc[r][q] = fma(a[r], bv[q], acc[r][q]);
        }
        __syncthreads();  // tiles are overwritten by the next step

        if (++kt == k_tiles) {  // advance (r, k-slice) without a division
          kt = 0;
          ++r_idx;
        }
      }

      // ---- epilogue ----
#pragma unroll
      for (int r = 0; r < kTM; ++r) {
        const int64_t i = row0 + ty + 16 * r;
        if (i >= p.M) continue;
        const T bias_i = p.bias != nullptr ? p.bias[i] : T(0);
#pragma unroll
        for (int q = 0; q < kTN; ++q) {
          const int64_t j = col0 + tx + 16 * q;
          if (j >= p.N) continue;
          T* out = Cz + i * p.ldc + j;
          T v = acc[r][q] + bias_i;
          if (p.accumulate) v += *out;
          *out = v;
        }
      }
    }
  }
}

// C_z[i][j] = [accumulate ? C_z[i][j] : 0] + bias[i] + sum_s P[s][z][i][j]  (P dense, M x N).
template <typename T>
__global__ void __launch_bounds__(256)
splitk_reduce_kernel(const T* __restrict__ P, int splits, int64_t batches, int64_t M, int64_t N, T* C,
                     int64_t ldc, int64_t c_batch, const T* __restrict__ bias, bool accumulate) {
  const int64_t per_split = batches * M * N;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < per_split; idx += step) {
    const int64_t j = idx % N;
    const int64_t t = idx / N;
    const int64_t i = t % M;
    const int64_t z = t / M;
    T v = T(0);
    for (int sp = 0; sp < splits; ++sp) v += P[sp * per_split + idx];  // fixed order: deterministic
    if (bias != nullptr) v += bias[i];
    T* out = C + z * c_batch + i * ldc + j;
    if (accumulate) v += *out;
    *out = v;
  }
}

struct GemmPlan {
  int splits = 1;
  dim3 grid;
};

inline GemmPlan plan_gemm(int64_t M, int64_t N, int64_t K, int64_t batches, int64_t red) {
  GemmPlan g;
  const int64_t tiles_m = ceil_div(M, kBM);
  const int64_t tiles_n = ceil_div(N, kBN);
  const int64_t tiles = tiles_m * tiles_n * batches;
  const int64_t steps = red * ceil_div(K, kBK);
  // ~4 resident 256-thread blocks per SM (register bound); below that, split the
  // reduction as long as every split keeps >= 8 K-slices (128-deep) of work.
  const int64_t target = static_cast<int64_t>(num_sms()) * 4;
  int64_t splits = 1;
  if (tiles > 0 && tiles < target) {
    splits = clamp_val<int64_t>(ceil_div(target, tiles), 1, 64);
    splits = clamp_val<int64_t>(splits, 1, std::max<int64_t>(1, steps / 8));
  }
  g.splits = static_cast<int>(splits);
  g.grid = dim3(static_cast<unsigned>(clamp_val<int64_t>(tiles_n, 1, 0x7fffffff)),
                static_cast<unsigned>(clamp_val<int64_t>(tiles_m, 1, 65535)),
                static_cast<unsigned>(clamp_val<int64_t>(batches * splits, 1, 65535)));
  return g;
}

template <typename T>
size_t gemm_ws_elems(int64_t M, int64_t N, int64_t K, int64_t batches, int64_t red) {
  if (M <= 0 || N <= 0 || batches <= 0) return 0;
  const GemmPlan g = plan_gemm(M, N, K, batches, red);
  return g.splits > 1 ? static_cast<size_t>(g.splits) * batches * M * N : 0;
}

template <typename T>
void run_gemm(const GemmDesc<T>& d, T* workspace, cudaStream_t stream) {
  if (d.M <= 0 || d.N <= 0 || d.batches <= 0) return;
  GemmPlan g = plan_gemm(d.M, d.N, d.K, d.batches, d.red);
  if (workspace == nullptr && g.splits > 1) {  // no scratch given: run unsplit
    g.splits = 1;
    g.grid.z = static_cast<unsigned>(clamp_val<int64_t>(d.batches, 1, 65535));
  }
  GemmKernelArgs<T> a{};
  a.M = d.M;
  a.N = d.N;
  a.K = d.K;
  a.A = d.A;
  a.lda = d.lda;
  a.a_batch = d.a_batch;
  a.a_red = d.a_red;
  a.B = d.B;
  a.ldb = d.ldb;
  a.b_batch = d.b_batch;
  a.b_red = d.b_red;
  a.batches = d.batches;
  a.red = d.red;
  a.splits = g.splits;
  if (g.splits == 1) {
    a.C = d.C;
    a.ldc = d.ldc;
    a.c_batch = d.c_batch;
    a.c_split = 0;
    a.bias = d.bias;
    a.accumulate = d.accumulate;
  } else {  // dense partials P[split][z][M][N]
    a.C = workspace;
    a.ldc = d.N;
    a.c_batch = d.M * d.N;
    a.c_split = d.batches * d.M * d.N;
    a.bias = nullptr;
    a.accumulate = false;
  }
  const dim3 block(kGemmThreads);
  if (!d.trans_a && !d.trans_b) {
    launch_kernel(gemm_kernel<T, false, false>, g.grid, block, stream, a);
  } else if (d.trans_a && !d.trans_b) {
    launch_kernel(gemm_kernel<T, true, false>, g.grid, block, stream, a);
  } else if (!d.trans_a && d.trans_b) {
    launch_kernel(gemm_kernel<T, false, true>, g.grid, block, stream, a);
  } else {
    launch_kernel(gemm_kernel<T, true, true>, g.grid, block, stream, a);
  }
  if (g.splits > 1) {
    const int64_t total = d.batches * d.M * d.N;
    launch_kernel(splitk_reduce_kernel<T>, dim3(static_cast<unsigned>(elementwise_blocks(total, 256))), dim3(256),
                  stream, static_cast<const T*>(workspace), g.splits, d.batches, d.M, d.N, d.C, d.ldc, d.c_batch,
                  d.bias, d.accumulate);
  }
}

// ---------------------------------------------------------------------------
// GEMM descriptions of the three convolution products
// ---------------------------------------------------------------------------

// y_b (Cout x L) = W (Cout x K) * col_b (K x L) + bias
template <typename T>
GemmDesc<T> forward_desc(const T* col, const T* weight, const T* bias, T* y, int64_t B, const Conv2dGeometry& s) {
  GemmDesc<T> d;
  d.M = s.Cout;
  d.N = s.P();
  d.K = s.K();
  d.A = weight;
  d.lda = s.K();
  d.B = col;
  d.ldb = s.P();
  d.b_batch = s.K() * s.P();  // == Cin * H * W in the pointwise case (col == x)
  d.C = y;
  d.ldc = s.P();
  d.c_batch = s.Cout * s.P();
  d.bias = bias;
  d.batches = B;
  return d;
}

// dcol_b (K x L) = W^T (K x Cout) * dy_b (Cout x L);  W^T(i, k) = W[k * K + i]
template <typename T>
GemmDesc<T> backward_input_desc(const T* grad_y, const T* weight, T* dcol, int64_t B, const Conv2dGeometry& s) {
  GemmDesc<T> d;
  d.M = s.K();
  d.N = s.P();
  d.K = s.Cout;
  d.trans_a = true;
  d.A = weight;
  d.lda = s.K();
  d.B = grad_y;
  d.ldb = s.P();
  d.b_batch = s.Cout * s.P();
  d.C = dcol;
  d.ldc = s.P();
  d.c_batch = s.K() * s.P();
  d.batches = B;
  return d;
}

// dW (Cout x K) (+)= sum_b dy_b (Cout x L) * col_b^T (L x K);  col_b^T(l, k) = col_b[k * L + l]
template <typename T>
GemmDesc<T> backward_weight_desc(const T* grad_y, const T* col, T* grad_w, int64_t B, const Conv2dGeometry& s,
                                 bool accumulate) {
  GemmDesc<T> d;
  d.M = s.Cout;
  d.N = s.K();
  d.K = s.P();
  d.A = grad_y;
  d.lda = s.P();
  d.a_red = s.Cout * s.P();
  d.trans_b = true;
  d.B = col;
  d.ldb = s.P();
  d.b_red = s.K() * s.P();
  d.C = grad_w;
  d.ldc = s.K();
  d.batches = 1;
  d.red = B;
  d.accumulate = accumulate;
  return d;
}

template <typename T>
size_t col_elems(const Conv2dGeometry& s, int64_t B) {
  return s.pointwise() ? 0 : static_cast<size_t>(B) * s.K() * s.P();
}

template <typename T>
struct BiasGradOp {
  using State = SumState<T>;
  struct Ctx {};
  const T* dy;
  T* db;
  __device__ __forceinline__ Ctx channel(int64_t) const { return {}; }
  __device__ __forceinline__ void update(State& st, const Ctx&, int64_t i) const { st.a += dy[i]; }
  __device__ __forceinline__ void finalize(int64_t c, const State& st) const { db[c] = st.a; }
};

// ---------------------------------------------------------------------------
// im2col / col2im launchers
// ---------------------------------------------------------------------------

template <typename scalar_t>
void conv2d_im2col(const scalar_t* x, int64_t B, const Conv2dGeometry& s, scalar_t* col, cudaStream_t stream) {
  const int64_t total = B * s.C * s.P();
  launch_kernel(im2col_kernel<scalar_t>, dim3(static_cast<unsigned>(elementwise_blocks(total, kColThreads))),
                dim3(kColThreads), stream, x, B, s, col);
}

template <typename scalar_t>
void conv2d_col2im(const scalar_t* col, int64_t B, const Conv2dGeometry& s, scalar_t* dx, cudaStream_t stream) {
  const int64_t total = B * s.C * s.H * s.W;
  launch_kernel(col2im_kernel<scalar_t>, dim3(static_cast<unsigned>(elementwise_blocks(total, kColThreads))),
                dim3(kColThreads), stream, col, B, s, dx);
}

// The chunk's column matrix, the same as the CPU's: x itself for a pointwise
// convolution, else im2col into the start of the workspace.
template <typename scalar_t>
const scalar_t* columns(const scalar_t* x, int64_t B, const Conv2dGeometry& s, scalar_t* workspace,
                        cudaStream_t stream) {
  if (s.pointwise()) return x;
  conv2d_im2col(x, B, s, workspace, stream);
  return workspace;
}

}  // namespace

// ---------------------------------------------------------------------------
// Launchers (conv2d_kernels.cuh)
// ---------------------------------------------------------------------------

template <typename scalar_t>
size_t conv2d_forward_workspace_elems(const Conv2dGeometry& s, int64_t B) {
  return col_elems<scalar_t>(s, B) + gemm_ws_elems<scalar_t>(s.Cout, s.P(), s.K(), B, 1);
}

template <typename scalar_t>
void conv2d_forward(const scalar_t* x, const scalar_t* weight, const scalar_t* bias, scalar_t* y, int64_t B,
                    const Conv2dGeometry& s, scalar_t* workspace, cudaStream_t stream) {
  const scalar_t* col = columns(x, B, s, workspace, stream);
  run_gemm(forward_desc(col, weight, bias, y, B, s), workspace + col_elems<scalar_t>(s, B), stream);
}

template <typename scalar_t>
size_t conv2d_backward_input_workspace_elems(const Conv2dGeometry& s, int64_t B) {
  return col_elems<scalar_t>(s, B) + gemm_ws_elems<scalar_t>(s.K(), s.P(), s.Cout, B, 1);
}

template <typename scalar_t>
void conv2d_backward_input(const scalar_t* grad_y, const scalar_t* weight, scalar_t* grad_x, int64_t B,
                           const Conv2dGeometry& s, scalar_t* workspace, cudaStream_t stream) {
  const size_t ncol = col_elems<scalar_t>(s, B);
  if (s.pointwise()) {  // dcol is dx itself
    run_gemm(backward_input_desc(grad_y, weight, grad_x, B, s), workspace, stream);
    return;
  }
  run_gemm(backward_input_desc(grad_y, weight, workspace, B, s), workspace + ncol, stream);
  conv2d_col2im(static_cast<const scalar_t*>(workspace), B, s, grad_x, stream);
}

template <typename scalar_t>
size_t conv2d_backward_weight_workspace_elems(const Conv2dGeometry& s, int64_t B) {
  return col_elems<scalar_t>(s, B) + gemm_ws_elems<scalar_t>(s.Cout, s.K(), s.P(), 1, B);
}

template <typename scalar_t>
void conv2d_backward_weight(const scalar_t* grad_y, const scalar_t* x, scalar_t* grad_w, int64_t B,
                            const Conv2dGeometry& s, bool accumulate, scalar_t* workspace, cudaStream_t stream) {
  const scalar_t* col = columns(x, B, s, workspace, stream);
  run_gemm(backward_weight_desc(grad_y, col, grad_w, B, s, accumulate), workspace + col_elems<scalar_t>(s, B), stream);
}

template <typename scalar_t>
size_t conv2d_backward_bias_workspace_bytes(int64_t N, int64_t Cout, int64_t L) {
  return channel_reduce_workspace_bytes<BiasGradOp<scalar_t>>(N, Cout, L);
}

template <typename scalar_t>
void conv2d_backward_bias(const scalar_t* grad_y, int64_t N, int64_t Cout, int64_t L, scalar_t* grad_b,
                          void* workspace, cudaStream_t stream) {
  const BiasGradOp<scalar_t> op{grad_y, grad_b};
  run_channel_reduce(op, N, Cout, L, workspace, stream);
}

#define ZOO_INSTANTIATE_CONV(T)                                                                                  \
  template size_t conv2d_forward_workspace_elems<T>(const Conv2dGeometry&, int64_t);                               \
  template void conv2d_forward<T>(const T*, const T*, const T*, T*, int64_t, const Conv2dGeometry&, T*,            \
                                  cudaStream_t);                                                                \
  template size_t conv2d_backward_input_workspace_elems<T>(const Conv2dGeometry&, int64_t);                        \
  template void conv2d_backward_input<T>(const T*, const T*, T*, int64_t, const Conv2dGeometry&, T*, cudaStream_t); \
  template size_t conv2d_backward_weight_workspace_elems<T>(const Conv2dGeometry&, int64_t);                       \
  template void conv2d_backward_weight<T>(const T*, const T*, T*, int64_t, const Conv2dGeometry&, bool, T*,        \
                                          cudaStream_t);                                                        \
  template size_t conv2d_backward_bias_workspace_bytes<T>(int64_t, int64_t, int64_t);                           \
  template void conv2d_backward_bias<T>(const T*, int64_t, int64_t, int64_t, T*, void*, cudaStream_t);

ZOO_INSTANTIATE_CONV(float)
ZOO_INSTANTIATE_CONV(double)

#undef ZOO_INSTANTIATE_CONV

}  // namespace zoo::cuda::kernels
