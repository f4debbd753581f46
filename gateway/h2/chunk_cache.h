// A per-worker cache of small heap chunks for what the data plane allocates per request
// (nghttp2's frames, streams and header copies; the exchanges themselves), so that in
// steady state a request takes nothing from the heap.
//
// Every chunk is its own malloc() with a 16-byte header naming the cache that made it and
// its size class. A chunk freed on the thread whose current cache made it goes back to
// that cache's free list (up to a bound on the bytes kept); anywhere else, or past the
// bound, it goes back to the heap with free(), which is always valid. So nothing breaks
// when a session outlives its worker's thread or is torn down from another thread: it
// only stops being cached. A cache is single-threaded: its owning thread makes it
// current (set_current) while it runs.
#pragma once

#include <nghttp2/nghttp2.h>

#include <array>
#include <cstddef>
#include <cstdint>

namespace infergate::gateway {

class ChunkCache {
 public:
  // Keeps at most `max_cached_bytes` of freed chunks for reuse, and (trim_to_recent_peak)
  // no more than recent demand could use again.
  explicit ChunkCache(size_t max_cached_bytes = 64 << 20);
  ~ChunkCache();
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  // The largest request served from the size classes; larger ones are plain heap chunks.
  static constexpr size_t kMaxCached = 8192;

  // `n` bytes (16-byte aligned) from this cache; never null (throws std::bad_alloc).
  // Owner thread only (the one it is current on).
  void* allocate(size_t n);
  // Frees a chunk from any cache, or from none, on any thread; null is a no-op.
  static void release(void* p);
  // Grows or shrinks a chunk (realloc's contract; null on failure, the old chunk kept):
  // in place within its size class, else a new chunk from the current thread's cache.
  static void* reallocate(void* p, size_t n);

  // The calling thread's cache (its worker's while that runs), or null.
  static ChunkCache* current();
  static void set_current(ChunkCache* cache);
  // allocate() on the current cache, or a plain heap chunk where there is none.
  static void* allocate_here(size_t n);

  // An allocator for nghttp2 sessions (nghttp2_session_*_new3) backed by this cache.
  nghttp2_mem* nghttp2_allocator() { return &mem_; }

  size_t cached_bytes() const { return cached_bytes_; }
  // Class chunks this cache handed out that have not come back to it.
  size_t live_bytes() const { return live_bytes_; }

  // Called about once a second (the worker's tick), like BlockPool's: keeps as many freed
  // bytes as the peak demand of the last kPeakPeriods calls could use again (at least
  // kMinKept), and gives the rest back to the heap. A steady load of thousands of streams
  // keeps its chunks; memory comes back some seconds after a burst.
  void trim_to_recent_peak();
  static constexpr size_t kPeakPeriods = 10;
  static constexpr size_t kMinKept = 256 * 1024;

 private:
  struct Header;
  static constexpr size_t kClasses = 16;
  static constexpr std::array<std::uint32_t, kClasses> kClassBytes = {
      32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192};

  void recycle(Header* h);

  size_t max_cached_bytes_;
  size_t cached_bytes_ = 0;
  size_t live_bytes_ = 0;       // chunks freed on another thread never come back: an overcount
  size_t peak_live_bytes_ = 0;  // since the last trim_to_recent_peak()
  std::array<size_t, kPeakPeriods> recent_peaks_{};
  size_t period_ = 0;
  std::array<Header*, kClasses> free_{};
  nghttp2_mem mem_;
};

// A standard allocator over the current thread's cache (the heap where there is none),
// for containers that grow per request (a queue's slices).
template <typename T>
struct ChunkAllocator {
  using value_type = T;
  ChunkAllocator() = default;
  template <typename U>
  ChunkAllocator(const ChunkAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(ChunkCache::allocate_here(n * sizeof(T))); }
  void deallocate(T* p, size_t) noexcept { ChunkCache::release(p); }
  template <typename U>
  bool operator==(const ChunkAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace infergate::gateway
