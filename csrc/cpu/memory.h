// Memory for the CPU kernels: outputs and per-thread scratch.
//
// Fresh large allocations are mapped page by page on first touch, and freeing
// them unmaps them again, which in a multi-threaded process costs TLB
// shoot-downs on every core. Measured here, that made small convolutions
// slower on 2 threads than on 1. So temporary buffers are per-thread scratch
// kept between calls, and large outputs get huge pages advised (Linux THP in
// "madvise" mode) before their first write.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace zoo::cpu {

inline void advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const auto begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t last = (begin + t.nbytes()) & ~(kHuge - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);  // advisory: failure is harmless
#endif
}

// at::empty_like / at::empty, with huge pages advised for large outputs.
inline at::Tensor empty_output_like(const at::Tensor& x) {
  at::Tensor out = at::empty_like(x);
  advise_huge_pages(out);
  return out;
}

inline at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  at::Tensor out = at::empty(sizes, options);
  advise_huge_pages(out);
  return out;
}

// A per-thread buffer of at least `bytes` bytes, 64-byte aligned, kept and
// reused by later calls on the same thread. `slot` tells apart the buffers one
// kernel needs at once. The contents are undefined on return.
inline void* thread_scratch(int slot, size_t bytes) {
  struct AlignedDelete {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  constexpr int kSlots = 4;
  thread_local std::array<std::unique_ptr<std::byte[], AlignedDelete>, kSlots> buffers;
  thread_local std::array<size_t, kSlots> capacity{};
  TORCH_INTERNAL_ASSERT(slot >= 0 && slot < kSlots);
  if (capacity[slot] < bytes) {
    buffers[slot].reset();
    buffers[slot].reset(new (std::align_val_t(64)) std::byte[bytes]);
    capacity[slot] = bytes;
  }
  return buffers[slot].get();
}

// A (rows, cols) tensor over this thread's scratch slot; valid until the slot is reused.
inline at::Tensor scratch_matrix(int slot, int64_t rows, int64_t cols, const at::TensorOptions& options) {
  const size_t bytes = static_cast<size_t>(rows * cols) * options.dtype().itemsize();
  return at::from_blob(thread_scratch(slot, bytes), {rows, cols}, options);
}

}  // namespace zoo::cpu
