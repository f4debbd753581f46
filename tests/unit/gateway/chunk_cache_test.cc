#include "gateway/h2/chunk_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "gateway/h2/handler_memory.h"

namespace infergate::gateway {
namespace {

// The cache current on this thread while a test runs.
class ChunkCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { ChunkCache::set_current(&cache_); }
  void TearDown() override { ChunkCache::set_current(nullptr); }
  ChunkCache cache_{64 * 1024};
};

TEST_F(ChunkCacheTest, AFreedChunkIsTheNextOneOfItsSizeClass) {
  void* a = cache_.allocate(100);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 16, 0u);
  std::memset(a, 0xab, 100);
  ChunkCache::release(a);
  EXPECT_EQ(cache_.cached_bytes(), 128u);
  EXPECT_EQ(cache_.allocate(120), a) << "same class (up to 128 bytes): reused";
  void* other = cache_.allocate(200);
  EXPECT_NE(other, a);
  ChunkCache::release(a);
  ChunkCache::release(other);
  ChunkCache::release(nullptr);
}

TEST_F(ChunkCacheTest, KeepsNoMoreThanItsBoundAndLargeChunksGoToTheHeap) {
  std::vector<void*> chunks;
  for (int i = 0; i < 20; ++i) chunks.push_back(cache_.allocate(8192));
  for (void* p : chunks) ChunkCache::release(p);
  EXPECT_EQ(cache_.cached_bytes(), 64u * 1024) << "8 of 20 kept under a 64 KiB bound";
  void* large = cache_.allocate(ChunkCache::kMaxCached + 1);
  std::memset(large, 1, ChunkCache::kMaxCached + 1);
  ChunkCache::release(large);
  EXPECT_EQ(cache_.cached_bytes(), 64u * 1024);
}

// Like the block pool: a steady demand keeps its chunks; some periods after a burst the
// cache gives back all but a little.
TEST(ChunkCacheTrim, KeepsWhatRecentDemandCouldUseAndGivesTheRestBack) {
  ChunkCache cache(64 << 20);
  ChunkCache::set_current(&cache);
  std::vector<void*> chunks;
  for (int i = 0; i < 2048; ++i) chunks.push_back(cache.allocate(1000));  // 2 MiB live
  EXPECT_EQ(cache.live_bytes(), 2048u * 1024);
  for (void* p : chunks) ChunkCache::release(p);
  EXPECT_EQ(cache.live_bytes(), 0u);
  EXPECT_EQ(cache.cached_bytes(), 2048u * 1024);
  cache.trim_to_recent_peak();
  EXPECT_EQ(cache.cached_bytes(), 2048u * 1024) << "the demand just seen must stay cached";
  for (size_t i = 1; i < ChunkCache::kPeakPeriods; ++i) cache.trim_to_recent_peak();
  EXPECT_EQ(cache.cached_bytes(), 2048u * 1024) << "still within the recent periods";
  cache.trim_to_recent_peak();
  EXPECT_LE(cache.cached_bytes(), ChunkCache::kMinKept) << "the burst has left the window";
  EXPECT_GT(cache.cached_bytes(), 0u);
  ChunkCache::set_current(nullptr);
}

TEST_F(ChunkCacheTest, AChunkFreedOnAnotherThreadGoesBackToTheHeap) {
  void* p = cache_.allocate(64);
  std::thread([p] { ChunkCache::release(p); }).join();
  EXPECT_EQ(cache_.cached_bytes(), 0u) << "another thread must never touch this cache";
  ChunkCache::set_current(nullptr);
  void* q = cache_.allocate(64);
  ChunkCache::release(q);  // no cache current here: the heap
  EXPECT_EQ(cache_.cached_bytes(), 0u);
  void* r = ChunkCache::allocate_here(64);
  ChunkCache::release(r);
}

TEST_F(ChunkCacheTest, NghttpAllocatorKeepsReallocAndCallocContracts) {
  nghttp2_mem* mem = cache_.nghttp2_allocator();
  auto* p = static_cast<char*>(mem->malloc(10, mem->mem_user_data));
  std::memcpy(p, "0123456789", 10);
  p = static_cast<char*>(mem->realloc(p, 20, mem->mem_user_data));  // same class
  EXPECT_EQ(std::memcmp(p, "0123456789", 10), 0);
  p = static_cast<char*>(mem->realloc(p, 10000, mem->mem_user_data));  // to the heap
  EXPECT_EQ(std::memcmp(p, "0123456789", 10), 0);
  p = static_cast<char*>(mem->realloc(p, 5, mem->mem_user_data));  // back into a class
  EXPECT_EQ(std::memcmp(p, "01234", 5), 0);
  mem->free(p, mem->mem_user_data);
  auto* z = static_cast<unsigned char*>(mem->calloc(100, 3, mem->mem_user_data));
  for (int i = 0; i < 300; ++i) ASSERT_EQ(z[i], 0) << i;
  mem->free(z, mem->mem_user_data);
  EXPECT_EQ(mem->calloc(SIZE_MAX / 2, 4, mem->mem_user_data), nullptr) << "overflow";
  void* fresh = mem->realloc(nullptr, 40, mem->mem_user_data);
  mem->free(fresh, mem->mem_user_data);
}

TEST(HandlerMemory, ServesOneOperationAtATimeThenTheHeap) {
  HandlerMemory memory;
  HandlerAllocator<int> alloc(memory);
  int* a = alloc.allocate(4);
  int* b = alloc.allocate(4);  // taken: from the heap
  EXPECT_NE(a, b);
  alloc.deallocate(b, 4);
  alloc.deallocate(a, 4);
  HandlerAllocator<double> rebound(alloc);
  EXPECT_TRUE(rebound == alloc);
  double* c = rebound.allocate(2);
  EXPECT_EQ(static_cast<void*>(c), static_cast<void*>(a)) << "free again: the buffer";
  rebound.deallocate(c, 2);
  char* big = HandlerAllocator<char>(memory).allocate(4096);  // does not fit: the heap
  EXPECT_NE(static_cast<void*>(big), static_cast<void*>(a));
  HandlerAllocator<char>(memory).deallocate(big, 4096);
}

}  // namespace
}  // namespace infergate::gateway
