// Non-temporal stores for outputs too large for the last-level cache to keep until the next layer
// reads them (batch norm, the activations).
#pragma once

#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace zoo::cpu {

// Whether a pass writing `bytes` of output writes them with non-temporal stores: when the tensor is
// larger than the last-level cache could keep for the next layer anyway.
inline bool writes_streaming(int64_t bytes) {
  constexpr int64_t kStreamingBytes = int64_t(32) << 20;
  return bytes >= kStreamingBytes;
}

#if defined(__AVX512F__)
// out[i] = value(i) for i < n (float32), for outputs that will not be read again soon:
// the stores go straight to memory (non-temporal) instead of first reading each line of
// out into the cache (the read a normal store's cache miss makes), which saves a third
// of a pass's traffic. vector(i) gives the 16 values from i. The caller fences
// (_mm_sfence) before the output is used.
template <typename Value, typename Vector>
inline void stream_run(float* out, int64_t n, const Value& value, const Vector& vector) {
  int64_t i = 0;
  for (; i < n && reinterpret_cast<uintptr_t>(out + i) % 64 != 0; ++i) out[i] = value(i);
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(out + i, vector(i));
  for (; i < n; ++i) out[i] = value(i);
}
#endif

}  // namespace zoo::cpu
