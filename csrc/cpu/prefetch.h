// Software prefetch for the CPU kernels.
#pragma once

#include <cstdint>

namespace zoo::cpu {

// Asks for the cache lines of `count` values from `first` that a later step reads. For reads the
// hardware prefetchers do not follow: short runs far apart (a channel's rows of several images in
// the Winograd transforms, before which their loads were most of an input transform's time) or too
// short to get ahead within (the next 1-4 KiB plane of max pooling, whose loads waited on memory in
// a training step).
template <typename T>
inline void prefetch_values(const T* first, int64_t count) {
  const char* begin = reinterpret_cast<const char*>(first);
  const char* end = reinterpret_cast<const char*>(first + count);
  for (const char* line = begin; line < end; line += 64) __builtin_prefetch(line);
  __builtin_prefetch(end - 1);
}

}  // namespace zoo::cpu
