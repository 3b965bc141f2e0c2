// The replacement operator new / delete behind allocation_count(). In a file of its own so that
// the compiler never sees a new-expression paired with the free() below (GCC's
// -Wmismatched-new-delete would). The array and nothrow forms call these by default.
#include "nn/count_allocations.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> g_count{0};
}  // namespace

void* operator new(std::size_t n) {
  g_count.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace datarax::test {

long allocation_count() { return g_count.load(std::memory_order_relaxed); }

}  // namespace datarax::test
