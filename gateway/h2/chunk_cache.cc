#include "gateway/h2/chunk_cache.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace infergate::gateway {
namespace {

thread_local ChunkCache* current_cache = nullptr;

constexpr std::uint32_t kHeapClass = 0xffffffff;  // not from a size class

}  // namespace

struct alignas(16) ChunkCache::Header {
  ChunkCache* owner;    // the cache whose size class it is; null for a heap chunk
  std::uint32_t klass;  // index into kClassBytes, or kHeapClass
  std::uint32_t bytes;  // what was asked for (a heap chunk's size, for realloc)

  void* body() { return this + 1; }
  static Header* of(void* p) { return static_cast<Header*>(p) - 1; }
  Header*& next() { return *static_cast<Header**>(body()); }  // while on a free list
};
ChunkCache::ChunkCache(size_t max_cached_bytes) : max_cached_bytes_(max_cached_bytes) {
  static_assert(sizeof(Header) == 16);
  mem_.mem_user_data = this;
  // nghttp2 calls come from the session's worker; anywhere else (a test, a session torn
  // down after its thread) the heap serves, never another thread's free lists.
  mem_.malloc = [](size_t n, void*) -> void* {
    try {
      return allocate_here(n);
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  };
  mem_.free = [](void* p, void*) { release(p); };
  mem_.calloc = [](size_t count, size_t n, void*) -> void* {
    if (n != 0 && count > SIZE_MAX / n) return nullptr;
    try {
      void* p = allocate_here(count * n);
      std::memset(p, 0, count * n);
      return p;
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  };
  mem_.realloc = [](void* p, size_t n, void*) -> void* { return reallocate(p, n); };
}

ChunkCache::~ChunkCache() {
  if (current_cache == this) current_cache = nullptr;
  for (Header*& head : free_) {
    while (head != nullptr) {
      Header* h = head;
      head = h->next();
      std::free(h);
    }
  }
}

ChunkCache* ChunkCache::current() { return current_cache; }
void ChunkCache::set_current(ChunkCache* cache) { current_cache = cache; }

void* ChunkCache::allocate(size_t n) {
  const auto it = std::lower_bound(kClassBytes.begin(), kClassBytes.end(), n);
  if (it == kClassBytes.end()) {
    if (n > std::uint32_t{0xffffffff} - sizeof(Header)) throw std::bad_alloc();
    auto* h = static_cast<Header*>(std::malloc(sizeof(Header) + n));
    if (h == nullptr) throw std::bad_alloc();
    *h = Header{nullptr, kHeapClass, static_cast<std::uint32_t>(n)};
    return h->body();
  }
  const auto klass = static_cast<std::uint32_t>(it - kClassBytes.begin());
  live_bytes_ += *it;
  peak_live_bytes_ = std::max(peak_live_bytes_, live_bytes_);
  if (Header* h = free_[klass]; h != nullptr) {
    free_[klass] = h->next();
    cached_bytes_ -= *it;
    h->bytes = static_cast<std::uint32_t>(n);
    return h->body();
  }
  auto* h = static_cast<Header*>(std::malloc(sizeof(Header) + *it));
  if (h == nullptr) throw std::bad_alloc();
  *h = Header{this, klass, static_cast<std::uint32_t>(n)};
  return h->body();
}

void* ChunkCache::allocate_here(size_t n) {
  if (ChunkCache* cache = current_cache; cache != nullptr) return cache->allocate(n);
  if (n > std::uint32_t{0xffffffff} - sizeof(Header)) throw std::bad_alloc();
  auto* h = static_cast<Header*>(std::malloc(sizeof(Header) + n));
  if (h == nullptr) throw std::bad_alloc();
  *h = Header{nullptr, kHeapClass, static_cast<std::uint32_t>(n)};
  return h->body();
}

void ChunkCache::release(void* p) {
  if (p == nullptr) return;
  Header* h = Header::of(p);
  if (h->owner != nullptr && h->owner == current_cache) return h->owner->recycle(h);
  std::free(h);
}

void ChunkCache::recycle(Header* h) {
  const std::uint32_t size = kClassBytes[h->klass];
  live_bytes_ -= std::min<size_t>(live_bytes_, size);
  if (cached_bytes_ + size > max_cached_bytes_) return std::free(h);
  cached_bytes_ += size;
  h->next() = free_[h->klass];
  free_[h->klass] = h;
}

void ChunkCache::trim_to_recent_peak() {
  recent_peaks_[period_++ % kPeakPeriods] = peak_live_bytes_;
  const size_t peak = *std::max_element(recent_peaks_.begin(), recent_peaks_.end());
  const size_t keep = std::max(kMinKept, peak > live_bytes_ ? peak - live_bytes_ : 0);
  // The largest classes first: fewest frees for the bytes.
  for (size_t klass = kClasses; klass-- > 0 && cached_bytes_ > keep;) {
    while (free_[klass] != nullptr && cached_bytes_ > keep) {
      Header* h = free_[klass];
      free_[klass] = h->next();
      cached_bytes_ -= kClassBytes[klass];
      std::free(h);
    }
  }
  peak_live_bytes_ = live_bytes_;
}

void* ChunkCache::reallocate(void* p, size_t n) {
  if (p == nullptr) {
    try {
      return allocate_here(n);
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  }
  Header* h = Header::of(p);
  const size_t capacity = h->klass == kHeapClass ? h->bytes : kClassBytes[h->klass];
  if (n <= capacity && h->klass != kHeapClass) {
    h->bytes = static_cast<std::uint32_t>(n);
    return p;
  }
  void* grown = nullptr;
  try {
    grown = allocate_here(n);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
  std::memcpy(grown, p, std::min<size_t>(h->bytes, n));
  release(p);
  return grown;
}

}  // namespace infergate::gateway
