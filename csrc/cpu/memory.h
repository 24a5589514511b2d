// Memory for the CPU kernels: outputs and per-thread scratch.
//
// Fresh large allocations are mapped page by page on first touch (and zeroed
// by the OS), and freeing them unmaps them again. So temporary buffers are
// per-thread scratch kept between calls, and large outputs come from a cache
// of blocks with huge pages advised (Linux THP in "madvise" mode).
#pragma once

#include <ATen/ATen.h>

#include <c10/util/strides.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace zoo::cpu {

inline void advise_huge_pages(void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t last = (begin + bytes) & ~(kHuge - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);  // advisory: failure is harmless
#endif
}

// Large blocks whose tensors were freed, kept for the next output of the same
// size: torch's CPU allocator returns large blocks to the OS, so every large
// output would otherwise be faulted in and zeroed by the kernel again (for a
// 100 MB batch-norm output that cost more than the normalisation itself).
// Idle blocks are capped (ZOO_OUTPUT_CACHE_MB, default 1024; 0 disables).
class OutputBlockCache {
 public:
  static OutputBlockCache& instance() {
    static OutputBlockCache* cache = new OutputBlockCache();  // never destroyed: tensors may outlive statics
    return *cache;
  }

  bool enabled() const { return capacity_ > 0; }

  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = idle_.find(bytes);
      if (it != idle_.end()) {
        void* block = it->second;
        idle_.erase(it);
        idle_bytes_ -= bytes;
        return block;
      }
    }
    void* block = nullptr;
    if (posix_memalign(&block, size_t(2) << 20, bytes) != 0) throw std::bad_alloc();
    advise_huge_pages(block, bytes);
    return block;
  }

  void give_back(void* block, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (idle_bytes_ + bytes <= capacity_) {
        idle_.emplace(bytes, block);
        idle_bytes_ += bytes;
        return;
      }
    }
    std::free(block);
  }

 private:
  OutputBlockCache() {
    const char* env = std::getenv("ZOO_OUTPUT_CACHE_MB");
    capacity_ = (env ? std::strtoull(env, nullptr, 10) : 1024) << 20;
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> idle_;
  size_t idle_bytes_ = 0;
  size_t capacity_ = 0;
};

// An uninitialised output tensor with the given sizes and strides; large ones
// come from the block cache.
inline at::Tensor empty_output_strided(at::IntArrayRef sizes, at::IntArrayRef strides, const at::TensorOptions& options) {
  constexpr size_t kCachedFrom = size_t(1) << 20;
  int64_t extent = 1;  // elements spanned, for dense strides
  for (size_t d = 0; d < sizes.size(); ++d) extent += (sizes[d] - 1) * strides[d];
  const size_t bytes = static_cast<size_t>(extent) * options.dtype().itemsize();
  OutputBlockCache& cache = OutputBlockCache::instance();
  if (bytes < kCachedFrom || !cache.enabled() || !options.device().is_cpu()) {
    return at::empty_strided(sizes, strides, options);
  }
  void* block = cache.take(bytes);
  return at::from_blob(block, sizes, strides, [bytes](void* p) { OutputBlockCache::instance().give_back(p, bytes); },
                       options);
}

inline at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  return empty_output_strided(sizes, c10::contiguous_strides(sizes), options);
}

// Like at::empty_like(x) for a dense x (contiguous or channels-last).
inline at::Tensor empty_output_like(const at::Tensor& x) {
  return empty_output_strided(x.sizes(), x.strides(), x.options());
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

}  // namespace zoo::cpu
