// Counts every heap allocation of the process — malloc, calloc, posix_memalign and aligned_alloc, whoever
// calls them: C++'s operator new, the BLAS, any library — by interposing them over glibc's, so that
// a benchmark can check that steady state allocates nothing. Include it in exactly one translation
// unit of a benchmark program (it defines the functions).
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>

namespace datarax::bench {
inline std::atomic<long long> g_allocations{0};
inline long long allocations() { return g_allocations.load(std::memory_order_relaxed); }
}  // namespace datarax::bench

extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_memalign(std::size_t, std::size_t);
extern "C" void* malloc(std::size_t n) {
  datarax::bench::g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
extern "C" void* calloc(std::size_t count, std::size_t n) {
  datarax::bench::g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(count, n);
}
extern "C" int posix_memalign(void** p, std::size_t alignment, std::size_t n) {
  datarax::bench::g_allocations.fetch_add(1, std::memory_order_relaxed);
  *p = __libc_memalign(alignment, n);
  return *p != nullptr ? 0 : ENOMEM;
}
extern "C" void* aligned_alloc(std::size_t alignment, std::size_t n) {
  datarax::bench::g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, n);
}
