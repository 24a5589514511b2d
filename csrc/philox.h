// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the
// generator of Random123, cuRAND and torch's CUDA dropout), shared by the CPU and CUDA
// kernels so both devices draw the same numbers for the same seed. Counter-based: block j of
// a stream is a pure function of (j, key), so any thread computes any block, and the result
// does not depend on how the work is split. Torch-free (plain C++17) for the .cu files.
#pragma once

#include <cstdint>

#include "host_device.h"

namespace zoo::philox {

struct Block {
  uint32_t v[4];
};

// The four 32-bit words of Philox4x32-10 for counter (c0, c1, c2, c3) and key (k0, k1).
ZOO_HOST_DEVICE inline Block philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                           uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // key schedule (Weyl sequence)
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0, p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return {{c0, c1, c2, c3}};
}

// Block j (j = element index / 4) of the stream of a 64-bit seed: counter (j low, j high, 0, 0),
// key (seed low, seed high).
ZOO_HOST_DEVICE inline Block stream_block(uint64_t seed, uint64_t j) {
  return philox4x32_10(static_cast<uint32_t>(j), static_cast<uint32_t>(j >> 32), 0u, 0u,
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

}  // namespace zoo::philox
