// malloc_count(): the interposition of bench/malloc_count.h (malloc, calloc, posix_memalign and
// aligned_alloc over glibc's), for a test. Not linked into sanitizer builds, whose runtimes own
// malloc.
#include "train/count_mallocs.h"

#include "../../bench/malloc_count.h"

namespace datarax::test {

long long malloc_count() { return bench::allocations(); }

}  // namespace datarax::test
