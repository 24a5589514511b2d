// ZOO_HOST_DEVICE marks the torch-free helpers that the CPU and CUDA kernels share (geometry,
// activation, maxout, Philox): host and device functions under nvcc, plain functions elsewhere.
#pragma once

#if defined(__CUDACC__)
#define ZOO_HOST_DEVICE __host__ __device__
#else
#define ZOO_HOST_DEVICE
#endif
