#include "core/buffer_pool.h"

#include <sys/mman.h>

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace datarax::detail {

namespace {

constexpr std::size_t kLargeThreshold = 64 * 1024;          // below: plain allocator
constexpr std::size_t kMaxCachedBytes = std::size_t{4} << 30;  // cache bound

// Blocks of a huge page or more are mapped on their own, aligned to a huge page and marked for
// transparent huge pages (where the kernel offers them: "madvise" or "always" in
// /sys/kernel/mm/transparent_hugepage/enabled; elsewhere they are ordinary pages). A 2 MiB page
// instead of 512 small ones means fewer TLB misses for the kernels, and for the kernel's
// cross-process copy (Open MPI's CMA) 512 times fewer pages to pin: an all-reduce of 4-16 MiB
// between two processes takes 1.5-1.9x less time on such buffers (bench/all_reduce, MPI column).
constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::byte* map_block(std::size_t cls) {
  if (cls < kHugePage) {
    void* p = std::aligned_alloc(kBufferAlignment, cls);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<std::byte*>(p);
  }
  // Map one huge page more than needed, then unmap the unaligned head and the rest of the tail.
  const std::size_t span = cls + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + kHugePage - 1) & ~(std::uintptr_t{kHugePage} - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const std::uintptr_t end = aligned + cls;
  if (start + span > end) munmap(reinterpret_cast<void*>(end), start + span - end);
  auto* p = reinterpret_cast<std::byte*>(aligned);
  madvise(p, cls, MADV_HUGEPAGE);  // a hint: without THP the block simply keeps small pages
  return p;
}

void unmap_block(std::byte* p, std::size_t cls) {
  if (cls < kHugePage)
    std::free(p);
  else
    munmap(p, cls);
}

// Size classes at quarter-power-of-two steps bound the waste to 25% of a request.
std::size_t size_class(std::size_t nbytes) {
  const std::size_t p = std::bit_floor(nbytes);
  const std::size_t step = p >= 16 * 1024 ? p / 4 : 4096;
  return (nbytes + step - 1) / step * step;
}

class Pool {
 public:
  std::byte* take(std::size_t cls) {
    {
      std::lock_guard lock(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        std::byte* p = it->second.back();
        it->second.pop_back();
        cached_ -= cls;
        ++hits_;
        return p;
      }
      ++misses_;
    }
    return map_block(cls);
  }

  void give(std::byte* p, std::size_t cls) {
    {
      std::lock_guard lock(mu_);
      if (cached_ + cls <= kMaxCachedBytes) {
        free_[cls].push_back(p);
        cached_ += cls;
        return;
      }
    }
    unmap_block(p, cls);
  }

  BufferCacheStats stats() {
    std::lock_guard lock(mu_);
    return {cached_, hits_, misses_};
  }

  void clear() {
    std::lock_guard lock(mu_);
    for (auto& [cls, blocks] : free_)
      for (std::byte* p : blocks) unmap_block(p, cls);
    free_.clear();
    cached_ = 0;
  }

 private:
  std::mutex mu_;
  std::map<std::size_t, std::vector<std::byte*>> free_;
  std::size_t cached_ = 0;
  std::size_t hits_ = 0;
  std::size_t misses_ = 0;
};

// Never destroyed: Arrays held in other static objects may be freed after this file's statics.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

std::shared_ptr<std::byte> allocate_buffer(std::size_t nbytes) {
  if (nbytes < kLargeThreshold) {
    const std::size_t n = nbytes == 0 ? kBufferAlignment : nbytes;
    auto* p = static_cast<std::byte*>(::operator new(n, std::align_val_t{kBufferAlignment}));
    return std::shared_ptr<std::byte>(
        p, [](std::byte* q) { ::operator delete(q, std::align_val_t{kBufferAlignment}); });
  }
  const std::size_t cls = size_class(nbytes);
  std::byte* p = pool().take(cls);
  return std::shared_ptr<std::byte>(p, [cls](std::byte* q) { pool().give(q, cls); });
}

BufferCacheStats buffer_cache_stats() { return pool().stats(); }
void clear_buffer_cache() { pool().clear(); }

}  // namespace datarax::detail
