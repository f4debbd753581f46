// Fixed-size, reference-counted byte blocks and a per-worker free list of them.
//
// Stream bodies are copied once into blocks as they arrive (the one user-space copy of
// tensor bytes); from then on the same memory is handed to writev() by reference, so a
// block stays alive while a queue or an in-flight write still points into it.
// Single-threaded: a pool, its blocks and every BlockRef belong to one worker thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace infergate::gateway {

class BlockPool;

struct Block {
  static constexpr size_t kSize = 64 * 1024;

  BlockPool* pool;
  std::uint32_t refs;
  std::uint8_t data[kSize];
};

// A counted reference to a Block; the block returns to its pool when the last goes.
class BlockRef {
 public:
  BlockRef() = default;
  explicit BlockRef(Block* b) : block_(b) {
    if (block_ != nullptr) ++block_->refs;
  }
  BlockRef(const BlockRef& o) : BlockRef(o.block_) {}
  BlockRef(BlockRef&& o) noexcept : block_(std::exchange(o.block_, nullptr)) {}
  BlockRef& operator=(BlockRef o) noexcept {
    std::swap(block_, o.block_);
    return *this;
  }
  ~BlockRef() { reset(); }

  void reset();
  Block* get() const { return block_; }
  std::uint8_t* data() const { return block_->data; }
  explicit operator bool() const { return block_ != nullptr; }

 private:
  Block* block_ = nullptr;
};

class BlockPool {
 public:
  // Keeps at most `max_free` released blocks for reuse; the rest go back to the heap.
  explicit BlockPool(size_t max_free = 256) : max_free_(max_free) {}
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  BlockRef acquire();

  // Blocks handed out and not yet released: the memory a worker holds for stream data.
  // Readable from any thread (the admin thread reports it).
  size_t blocks_in_use() const { return in_use_.load(std::memory_order_relaxed); }
  size_t bytes_in_use() const { return blocks_in_use() * Block::kSize; }

 private:
  friend class BlockRef;
  void release(Block* b);

  size_t max_free_;
  std::atomic<size_t> in_use_{0};  // written by the owning worker only
  std::vector<Block*> free_;
};

inline void BlockRef::reset() {
  if (block_ != nullptr && --block_->refs == 0) block_->pool->release(block_);
  block_ = nullptr;
}

}  // namespace infergate::gateway
