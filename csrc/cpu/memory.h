// Memory for the CPU kernels: outputs and per-thread scratch, both bounded.
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
#include <string>
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
      // The block of this size freed last: the likeliest to be still in cache (multimap keeps
      // equal keys in insertion order, and find() would return the oldest).
      auto it = idle_.upper_bound(bytes);
      if (it != idle_.begin() && (--it)->first == bytes) {
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
  OutputBlockCache() : capacity_(capacity_from_env()) {}

  // ZOO_OUTPUT_CACHE_MB: a whole number of MiB from 0 (off) to 1 TiB; default 1024.
  // Anything else is refused (the first zoo op raises ValueError), never guessed.
  static size_t capacity_from_env() {
    const char* env = std::getenv("ZOO_OUTPUT_CACHE_MB");
    if (env == nullptr) return size_t(1024) << 20;
    const std::string text(env);
    constexpr size_t kMaxMiB = size_t(1) << 20;
    size_t mib = 0;
    bool valid = !text.empty() && text.size() <= 7;
    for (const char ch : text) {
      valid = valid && ch >= '0' && ch <= '9';
      if (valid) mib = mib * 10 + static_cast<size_t>(ch - '0');
    }
    TORCH_CHECK_VALUE(valid && mib <= kMaxMiB, "ZOO_OUTPUT_CACHE_MB must be a whole number of MiB from 0 (off) to ",
                      kMaxMiB, ", got '", text, "'");
    return mib << 20;
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> idle_;
  size_t idle_bytes_ = 0;
  size_t capacity_;
};

// An uninitialised output tensor with the given sizes and strides; large ones
// come from the block cache.
inline at::Tensor empty_output_strided(at::IntArrayRef sizes, at::IntArrayRef strides, const at::TensorOptions& options) {
  constexpr size_t kCachedFrom = size_t(1) << 20;
  int64_t extent = 1;  // elements spanned, for dense strides
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) {  // empty: nothing spanned (the sum would go negative, e.g. -1 for (0, 0))
      extent = 0;
      break;
    }
    extent += (sizes[d] - 1) * strides[d];
  }
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

// x itself when it is contiguous or 4-D channels-last (a kernel walks either as one array), else a
// contiguous copy.
inline at::Tensor dense_layout(const at::Tensor& x) {
  const bool channels_last = x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  return x.is_contiguous() || channels_last ? x : x.contiguous();
}

// t (x's shape) in the layout of x, contiguous or channels-last, so one index walks both.
inline at::Tensor in_layout_of(const at::Tensor& t, const at::Tensor& x) {
  return t.contiguous(x.is_contiguous() ? at::MemoryFormat::Contiguous : at::MemoryFormat::ChannelsLast);
}

// Scratch memory for one use inside a kernel, 64-byte aligned, contents undefined.
// Up to kRetainedScratchBytes it is a per-thread buffer kept for later calls (no
// allocation and no page faults in the steady state); a larger request gets a
// buffer of its own, freed when the Scratch goes out of scope. So a call leaves
// at most kScratchSlots * kRetainedScratchBytes per thread behind. `slot` tells
// apart the buffers one kernel holds at once.
constexpr int kScratchSlots = 3;
constexpr size_t kRetainedScratchBytes = size_t(32) << 20;

class Scratch {
 public:
  Scratch(int slot, size_t bytes) {
    TORCH_INTERNAL_ASSERT(slot >= 0 && slot < kScratchSlots);
    if (bytes > kRetainedScratchBytes) {
      own_ = allocate(bytes);
      data_ = own_.get();
      return;
    }
    thread_local std::array<Buffer, kScratchSlots> kept;
    thread_local std::array<size_t, kScratchSlots> kept_bytes{};
    if (kept_bytes[slot] < bytes) {
      kept[slot].reset();
      kept[slot] = allocate(bytes);
      kept_bytes[slot] = bytes;
    }
    data_ = kept[slot].get();
  }

  template <typename T>
  T* as() const {
    return reinterpret_cast<T*>(data_);
  }

 private:
  struct AlignedDelete {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  using Buffer = std::unique_ptr<std::byte[], AlignedDelete>;

  static Buffer allocate(size_t bytes) { return Buffer(new (std::align_val_t(64)) std::byte[bytes]); }

  Buffer own_;
  std::byte* data_ = nullptr;
};

}  // namespace zoo::cpu
