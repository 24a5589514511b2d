// at::parallel_for for bodies that call ATen operators.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#include <cstdint>

namespace zoo::cpu {

// Elements per parallel task in element-wise loops: big enough to amortise
// scheduling, small enough to split the zoo's tensors over a few threads.
constexpr int64_t kGrainElements = 32768;

// at::parallel_for whose body runs with the caller's thread-local state: OpenMP
// worker threads do not inherit it, so without this an ATen call in the body
// (at::mm_out on the weight, say) would run above the autograd guard the caller
// holds and refuse tensors that require grad.
template <typename F>
void parallel_for_with_state(int64_t begin, int64_t end, int64_t grain, const F& body) {
  const at::ThreadLocalState state;
  at::parallel_for(begin, end, grain, [&](int64_t first, int64_t last) {
    at::ThreadLocalStateGuard guard(state);
    body(first, last);
  });
}

}  // namespace zoo::cpu
