// malloc_count(): every heap allocation of the process — malloc, calloc, posix_memalign and
// aligned_alloc, whoever calls them (operator new, the buffer pool, a BLAS) — counted by
// interposing them over glibc's. Not linked into sanitizer builds, whose runtimes own malloc.
#include "train/count_mallocs.h"

#include <atomic>
#include <cerrno>
#include <cstddef>

namespace {
std::atomic<long long> g_count{0};
}  // namespace

extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_memalign(std::size_t, std::size_t);
extern "C" void* malloc(std::size_t n) {
  g_count.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
extern "C" void* calloc(std::size_t count, std::size_t n) {
  g_count.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(count, n);
}
extern "C" int posix_memalign(void** p, std::size_t alignment, std::size_t n) {
  g_count.fetch_add(1, std::memory_order_relaxed);
  *p = __libc_memalign(alignment, n);
  return *p != nullptr ? 0 : ENOMEM;
}
extern "C" void* aligned_alloc(std::size_t alignment, std::size_t n) {
  g_count.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, n);
}

namespace datarax::test {

long long malloc_count() { return g_count.load(std::memory_order_relaxed); }

}  // namespace datarax::test
