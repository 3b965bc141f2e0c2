// The process-wide cache of host buffers behind Array.
//
// Why: on the machines we target, touching a freshly mapped 4 KiB page costs ~10 us, so a 64 MiB
// buffer allocated per step costs ~160 ms of page faults. Large blocks are therefore not returned
// to the OS when their last Array goes away; they wait in a per-size-class free list and the next
// allocation of that class reuses them, already mapped. Small blocks use the ordinary allocator,
// which already reuses them. Blocks of 2 MiB or more are aligned to 2 MiB and advised for
// transparent huge pages (MADV_HUGEPAGE), which the kernels and MPI's cross-process copies of
// these buffers run faster on.
#pragma once

#include <cstddef>
#include <memory>

namespace datarax::detail {

inline constexpr std::size_t kBufferAlignment = 64;

// A block of at least `nbytes` (64-byte aligned; 2 MiB aligned from 2 MiB on; never null), given
// back to the cache when the last shared_ptr to it goes away. Thread-safe.
std::shared_ptr<std::byte> allocate_buffer(std::size_t nbytes);

struct BufferCacheStats {
  std::size_t cached_bytes = 0;   // in free lists now
  std::size_t hits = 0;           // large allocations served from the cache
  std::size_t misses = 0;         // large allocations that went to the system
};
BufferCacheStats buffer_cache_stats();
// Frees every cached block (tests, and callers that know memory will not be reused).
void clear_buffer_cache();

}  // namespace datarax::detail
