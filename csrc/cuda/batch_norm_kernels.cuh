// Batch-norm CUDA kernels: raw-pointer host launchers (no torch headers).
// Safe to include from host-only C++ (needs the CUDA include directory).
//
// Layout convention: the input is viewed as (N, C, S) with element (n, c, s) at
// offset (n * C + c) * S + s, all contiguous.
//   * NCHW ("planar"):               N = batch, S = H * W
//   * (N, C) and NHWC channels-last: N = batch (* H * W), S = 1 ("channels-innermost")
// S == 1 selects kernels whose threads run along C, so pass (N, C) and
// channels-last inputs that way.
//
// Types: scalar_t is float or double (the dtypes of the CPU kernels too); statistics
// and weight/bias gradients have the same type. weight and bias may be nullptr
// (weight = 1, bias = 0). All launches are asynchronous on `stream`; callers
// check cudaGetLastError().
#pragma once

#include "activation.h"

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace zoo::cuda::kernels {

// --- forward ----------------------------------------------------------------

// Bytes of scratch memory bn_stats needs for this shape on the current device
// (0 when each channel is reduced by a single block).
template <typename scalar_t>
size_t bn_stats_workspace_bytes(int64_t N, int64_t C, int64_t S);

// Per-channel batch statistics (Welford + Chan merge):
//   mean[c], invstd[c] = 1 / sqrt(var_biased + eps), var_unbiased[c] = M2 / (count - 1)
// count = N * S >= 2 (the ops refuse fewer values per channel in training).
template <typename scalar_t>
void bn_stats(const scalar_t* x, int64_t N, int64_t C, int64_t S, double eps,
              scalar_t* mean, scalar_t* invstd, scalar_t* var_unbiased,
              void* workspace, cudaStream_t stream);

// Per-channel mean[c] and M2[c] (sum of squared deviations), count = N * S >= 1: one process's share of a
// synchronized batch norm, merged with other processes' by the caller. Workspace: bn_stats_workspace_bytes.
template <typename scalar_t>
void bn_stats_m2(const scalar_t* x, int64_t N, int64_t C, int64_t S, scalar_t* mean, scalar_t* m2,
                 void* workspace, cudaStream_t stream);

// y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]  (training: batch stats; eval: running stats),
// then the fused activation `act` (activation.h; kNone: y as it is).
template <typename scalar_t>
void bn_normalize(const scalar_t* x, const scalar_t* mean, const scalar_t* invstd,
                  const scalar_t* weight, const scalar_t* bias, scalar_t* y,
                  int64_t N, int64_t C, int64_t S, activation::Activation act, cudaStream_t stream);

// invstd[c] = 1 / sqrt(var[c] + eps) (eval mode, from running_var).
template <typename scalar_t>
void bn_invstd_from_var(const scalar_t* var, double eps, int64_t C, scalar_t* invstd,
                        cudaStream_t stream);

// --- backward ---------------------------------------------------------------

template <typename scalar_t>
size_t bn_backward_workspace_bytes(int64_t N, int64_t C, int64_t S);

// Fused activation (`act`, training only): dy is the gradient of the activation's output, and g below
// is dy through the activation's derivative at the forward's pre-activation, recomputed from x, mean,
// invstd, weight and bias as bn_normalize computed it. Without one (kNone), g = dy (weight and bias unused).

// One reduction pass: sum_dy[c] = sum(g), sum_dy_xmu[c] = sum(g * (x - mean[c])),
// and, when dweight != nullptr, dweight[c] = sum_dy_xmu[c] * invstd[c] (invstd may be nullptr without
// dweight or an activation). (dbias == sum_dy.)
template <typename scalar_t>
void bn_backward_reduce(const scalar_t* dy, const scalar_t* x, const scalar_t* mean,
                        const scalar_t* invstd, const scalar_t* weight, const scalar_t* bias, activation::Activation act,
                        int64_t N, int64_t C, int64_t S, scalar_t* sum_dy, scalar_t* sum_dy_xmu,
                        scalar_t* dweight, void* workspace, cudaStream_t stream);

// Element-wise input gradient, M = `count`: N * S, or more when the sums were reduced over several processes:
//   train: dx = w * invstd * (g - sum_dy / M - (x - mean) * invstd^2 * sum_dy_xmu / M)
//   eval:  dx = dy * w * invstd   (sum_dy / sum_dy_xmu / mean unused, may be nullptr; act must be kNone)
template <typename scalar_t>
void bn_backward_input(const scalar_t* dy, const scalar_t* x, const scalar_t* mean,
                       const scalar_t* invstd, const scalar_t* weight, const scalar_t* bias, activation::Activation act,
                       const scalar_t* sum_dy, const scalar_t* sum_dy_xmu,
                       int64_t N, int64_t C, int64_t S, int64_t count, bool train, scalar_t* dx,
                       cudaStream_t stream);

}  // namespace zoo::cuda::kernels
