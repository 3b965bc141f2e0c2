// DATARAX_NO_TSAN: a function ThreadSanitizer does not instrument. Only for loops over memory that
// no other thread can see yet (a buffer being filled before it is shared): there is no race to
// find there, and instrumenting every element of a data set's conversion made the sanitizer pass
// of the trainer tests spend most of its time loading data.
#pragma once

#if defined(__clang__) || defined(__GNUC__)
#define DATARAX_NO_TSAN __attribute__((no_sanitize("thread")))
#else
#define DATARAX_NO_TSAN
#endif
