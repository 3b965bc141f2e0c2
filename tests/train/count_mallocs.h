// malloc_count(): how many heap allocations this process has made (count_mallocs.cc interposes
// malloc, calloc, posix_memalign and aligned_alloc over glibc's). Linked only where
// DATARAX_COUNT_MALLOCS is defined: not in sanitizer builds.
#pragma once

namespace datarax::test {

long long malloc_count();

}  // namespace datarax::test
