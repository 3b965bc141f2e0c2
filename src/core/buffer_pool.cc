#include "core/buffer_pool.h"

#include <bit>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace datarax::detail {

namespace {

constexpr std::size_t kLargeThreshold = 64 * 1024;          // below: plain allocator
constexpr std::size_t kMaxCachedBytes = std::size_t{4} << 30;  // cache bound

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
    void* p = std::aligned_alloc(kBufferAlignment, cls);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<std::byte*>(p);
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
    std::free(p);
  }

  BufferCacheStats stats() {
    std::lock_guard lock(mu_);
    return {cached_, hits_, misses_};
  }

  void clear() {
    std::lock_guard lock(mu_);
    for (auto& [cls, blocks] : free_)
      for (std::byte* p : blocks) std::free(p);
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
