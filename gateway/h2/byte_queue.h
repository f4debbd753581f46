// Byte queues built on pooled blocks. Single-threaded (one worker).
//
// ByteQueue holds one direction of one stream's body: bytes are appended (copied) as
// DATA arrives from one peer and taken, by reference, when DATA frames go to the other.
// OutputBuffer is what a connection writes next: small frame bytes copied in, body bytes
// referenced, in order, ready for one writev().
#pragma once

#include <boost/container/small_vector.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "gateway/h2/block_pool.h"
#include "gateway/h2/chunk_cache.h"

namespace infergate::gateway {

// A range of a block, kept alive by its reference.
struct Slice {
  BlockRef block;
  std::uint32_t offset;
  std::uint32_t length;

  const std::uint8_t* data() const { return block.data() + offset; }
};

// A FIFO of slices that does not allocate for the few slices a small message needs
// (std::deque allocates on construction). pop_front leaves a dead prefix that is
// compacted away once it dominates.
class SliceQueue {
 public:
  // Grows from the worker's chunk cache past the first few (no heap in steady state).
  using Storage = boost::container::small_vector<Slice, 4, ChunkAllocator<Slice>>;

  bool empty() const { return head_ == v_.size(); }
  size_t size() const { return v_.size() - head_; }
  Slice& front() { return v_[head_]; }
  Slice& back() { return v_.back(); }
  Storage::iterator begin() { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
  Storage::iterator end() { return v_.end(); }
  Storage::const_iterator begin() const { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
  Storage::const_iterator end() const { return v_.end(); }

  void push_back(Slice s) { v_.push_back(std::move(s)); }
  void push_front(Slice s);
  void pop_front();
  void clear() {
    v_.clear();
    head_ = 0;
  }

 private:
  Storage v_;
  size_t head_ = 0;
};

class OutputBuffer;

class ByteQueue {
 public:
  explicit ByteQueue(BlockPool& pool) : pool_(&pool) {}

  // Appends `data`: kept by reference to `block` when that holds it (the block a
  // connection read it into) and it is at least kMinReferencedBytes or continues the last
  // run kept from that block (no copy); else copied. The queue's first copy, when small,
  // goes into the pool's shared block, and so does what follows on from it there; any
  // other copy fills the queue's own block before taking a new one.
  void append(std::span<const std::uint8_t> data, const BlockRef* block = nullptr);
  // Shorter runs are copied: a reference pins its whole block, so a run of a 16th of one
  // at least keeps what a stream pins within 16x of what it counts.
  static constexpr size_t kMinReferencedBytes = Block::kSize / 16;
  // The largest first copy that goes into the shared block. A queue pins at most one
  // shared block besides its own (a copy that would start a run in another goes to its
  // own block), so a stream that trickles bytes between other streams' copies pins at
  // most one block more than a queue with only a block of its own would.
  static constexpr size_t kMaxSharedCopyBytes = kMinReferencedBytes;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Copies [offset, offset + out.size()) out; false if the queue is shorter.
  bool copy_out(size_t offset, std::span<std::uint8_t> out) const;

  // A view of [offset, offset + n) when it lies within one block (no copy), else empty.
  std::span<const std::uint8_t> contiguous(size_t offset, size_t n) const;

  // Moves the first n bytes (n <= size()) into `out` as referenced slices; with
  // `retain`, also keeps references there (request bytes held for a retry).
  void take(size_t n, OutputBuffer& out, SliceQueue* retain = nullptr);

  // Drops the first n bytes (n <= size()).
  void drop_front(size_t n);

  // Moves the first n bytes (n <= size()) to the end of `to`, by reference (no copy).
  void transfer(size_t n, ByteQueue& to);

  // Puts slices (taken earlier and retained) back in front, in order.
  void prepend(SliceQueue&& slices);

  // Drops everything; returns how many bytes were dropped.
  size_t clear();
  // No more bytes will be appended: lets go of the block appends were filling.
  void seal() { tail_.reset(); }

 private:
  // Removes the first n bytes (n <= size()), handing each slice (or the part of one) that
  // goes to `sink`.
  template <typename Sink>
  void pop_front(size_t n, Sink sink);
  // Copies `data` into the pool's shared block when the rules of append() allow it;
  // false when it must go to the queue's own block.
  bool append_shared(std::span<const std::uint8_t> data);

  BlockPool* pool_;
  SliceQueue slices_;  // front = oldest
  size_t size_ = 0;
  // The block appends fill, kept after its bytes were taken so that small chunks share
  // blocks (bytes retained for a retry then pin about what they count).
  BlockRef tail_;
  std::uint32_t tail_used_ = 0;
  // Where this queue's last copy into the shared block ended (generation 0: none yet).
  std::uint64_t shared_generation_ = 0;
  std::uint32_t shared_end_ = 0;
};

class OutputBuffer {
 public:
  explicit OutputBuffer(BlockPool& pool) : pool_(&pool) {}

  // Copies small bytes (frame headers, control frames) in.
  void append_copy(std::span<const std::uint8_t> data);
  void append_slice(Slice slice);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const SliceQueue& slices() const { return slices_; }

  // Drops the first n bytes (written to the socket).
  void consume_front(size_t n);
  // Releases every reference (after the write that used them completed).
  void clear();

 private:
  BlockPool* pool_;
  SliceQueue slices_;
  BlockRef tail_;  // the block append_copy writes into
  std::uint32_t tail_used_ = 0;
  size_t size_ = 0;
};

}  // namespace infergate::gateway
