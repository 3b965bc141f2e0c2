// DATARAX_CLONES: compile a hot loop for AVX-512 and AVX2 as well as the baseline x86-64, and let
// the loader pick the best the CPU has (GCC/Clang function multiversioning through an ifunc), so
// the library stays portable without giving up wide vectors. Put it on a function defined in a
// .cc file, not on an inline one in a header.
//
// ThreadSanitizer cannot run an ifunc resolver (it runs during relocation, before TSan's runtime
// is up), so a TSan build keeps the baseline version only; so does any target but x86-64, and
// clang (14 does not multiversion function templates).
#pragma once

#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !defined(__clang__)
#define DATARAX_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DATARAX_CLONES
#endif
