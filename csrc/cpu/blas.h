// MKL thread control for GEMMs called from inside our own parallel loops.
#pragma once

// MKL's per-thread override of its thread count (the C entry point; the lower-case
// names are its Fortran interface, which takes a pointer), when torch links MKL (a weak
// reference: null on builds without it, where the GEMM is sequential anyway).
extern "C" int MKL_Set_Num_Threads_Local(int) __attribute__((weak));

namespace zoo::cpu {

// Keeps MKL sequential on this thread while alive. Calling a threaded MKL GEMM
// from several of our threads at once serialised inside MKL and ran slower on
// 2 threads than on 1 here.
class SequentialBlas {
 public:
  SequentialBlas() : previous_(MKL_Set_Num_Threads_Local ? MKL_Set_Num_Threads_Local(1) : 0) {}
  ~SequentialBlas() {
    if (MKL_Set_Num_Threads_Local) MKL_Set_Num_Threads_Local(previous_);
  }
  SequentialBlas(const SequentialBlas&) = delete;
  SequentialBlas& operator=(const SequentialBlas&) = delete;

 private:
  int previous_;
};

}  // namespace zoo::cpu
