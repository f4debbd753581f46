// Fixed-size, reference-counted byte blocks and a per-worker free list of them.
//
// Stream bodies are copied once into blocks as they arrive (the one user-space copy of
// tensor bytes); from then on the same memory is handed to writev() by reference, so a
// block stays alive while a queue or an in-flight write still points into it.
// Single-threaded: a pool, its blocks and every BlockRef belong to one worker thread.
//
// Every block in use is charged to a process-wide BufferBudget (limits.max_buffered_bytes)
// that streams consult before they take more; blocks are mapped from the OS one by one,
// so a free list trimmed after a burst gives the memory back (RSS falls with it).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace infergate::gateway {

class BlockPool;

// The bytes every worker's blocks may hold together. Any thread.
class BufferBudget {
 public:
  explicit BufferBudget(std::uint64_t limit_bytes) : limit_(limit_bytes) {}

  std::uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  void set_limit(std::uint64_t bytes) { limit_.store(bytes, std::memory_order_relaxed); }
  std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  // Set aside for bytes that peers were told they may send (see BudgetReservation).
  std::uint64_t reserved() const { return reserved_.load(std::memory_order_relaxed); }
  // True when `more` bytes would not fit beside what is used and reserved.
  bool would_exceed(std::uint64_t more) const { return used() + reserved() + more > limit(); }

  void charge(std::uint64_t bytes) { used_.fetch_add(bytes, std::memory_order_relaxed); }
  void refund(std::uint64_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  // Sets `bytes` aside if they fit beside what is used and reserved; false if not.
  bool try_reserve(std::uint64_t bytes);
  void unreserve(std::uint64_t bytes) { reserved_.fetch_sub(bytes, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> limit_;
  std::atomic<std::uint64_t> used_{0};
  std::atomic<std::uint64_t> reserved_{0};
};

// Budget set aside for one stream's window beyond the usual (a large message's): the
// peer was told it may send that much, so those bytes are never refused for want of
// budget. Arriving bytes use the reservation up (they are charged as blocks instead);
// what is left goes back when the holder resets it or goes. Worker thread; move-only.
class BudgetReservation {
 public:
  BudgetReservation() = default;
  BudgetReservation(BudgetReservation&& o) noexcept
      : budget_(std::exchange(o.budget_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  BudgetReservation& operator=(BudgetReservation&& o) noexcept {
    if (this != &o) {
      reset();
      budget_ = std::exchange(o.budget_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  ~BudgetReservation() { reset(); }

  // A reservation of `bytes` from `budget`, or an empty one when they do not fit.
  static BudgetReservation take(BufferBudget& budget, std::uint64_t bytes) {
    BudgetReservation r;
    if (bytes > 0 && budget.try_reserve(bytes)) {
      r.budget_ = &budget;
      r.bytes_ = bytes;
    }
    return r;
  }

  std::uint64_t bytes() const { return bytes_; }
  explicit operator bool() const { return bytes_ > 0; }
  // Of `n` arriving bytes, how many the reservation covers; they leave it.
  std::uint64_t cover(std::uint64_t n) {
    const std::uint64_t covered = n < bytes_ ? n : bytes_;
    if (covered > 0) {
      bytes_ -= covered;
      budget_->unreserve(covered);
    }
    return covered;
  }
  void reset() { cover(bytes_); }
  // Sets `bytes` more aside from `budget` (the one it holds from, if any); false, with
  // nothing changed, when they do not fit.
  bool grow(BufferBudget& budget, std::uint64_t bytes) {
    if (bytes == 0) return true;
    if ((budget_ != nullptr && budget_ != &budget) || !budget.try_reserve(bytes)) return false;
    budget_ = &budget;
    bytes_ += bytes;
    return true;
  }

 private:
  BufferBudget* budget_ = nullptr;
  std::uint64_t bytes_ = 0;
};

struct Block {
  // One block is exactly 64 KiB of mapped memory: this header, then the data.
  static constexpr size_t kMappedSize = 64 * 1024;
  static constexpr size_t kHeaderSize = 64;
  static constexpr size_t kSize = kMappedSize - kHeaderSize;

  BlockPool* pool;
  std::uint32_t refs;
  alignas(kHeaderSize) std::uint8_t data[kSize];
};
static_assert(sizeof(Block) == Block::kMappedSize);

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
  // Keeps at most `max_free` released blocks for reuse; the rest go back to the OS.
  // Blocks in use are charged to `budget` when one is given (it must outlive the pool).
  explicit BlockPool(size_t max_free = 256, BufferBudget* budget = nullptr)
      : max_free_(max_free), budget_(budget) {}
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  BlockRef acquire();

  // Gives free blocks back to the OS until at most `keep` remain. Owner thread.
  void trim(size_t keep);
  // Called about once a second: keeps as many free blocks as the peak demand of the last
  // kPeakPeriods calls could use again (at least a few), and gives the rest back. A
  // steady load keeps its blocks (no map, fault and unmap per request); memory comes
  // back some seconds after a burst.
  void trim_to_recent_peak();
  static constexpr size_t kPeakPeriods = 10;

  // Blocks handed out and not yet released: the memory a worker holds for stream data.
  // Readable from any thread (the admin thread reports it).
  size_t blocks_in_use() const { return in_use_.load(std::memory_order_relaxed); }
  size_t bytes_in_use() const { return blocks_in_use() * Block::kMappedSize; }
  size_t free_blocks() const { return free_.size(); }
  BufferBudget* budget() const { return budget_; }

  // The block that the small copies of every queue on this pool share (ByteQueue::append),
  // so that many streams with small bodies do not hold a block each. Only the queues'
  // slices refer to it: it goes back to the pool with the last of them, and the next
  // shared copy starts another (a new `generation`). Bytes before `used` never change.
  struct SharedCopies {
    Block* block = nullptr;
    std::uint32_t used = 0;
    std::uint64_t generation = 0;
  };
  SharedCopies& shared_copies() { return shared_; }

 private:
  friend class BlockRef;
  void release(Block* b);

  static constexpr size_t kMinKeptFree = 32;

  size_t max_free_;
  BufferBudget* budget_;
  std::atomic<size_t> in_use_{0};                    // written by the owning worker only
  size_t peak_in_use_ = 0;                           // since the last trim_to_recent_peak()
  std::array<size_t, kPeakPeriods> recent_peaks_{};  // the last periods' peaks
  size_t period_ = 0;
  std::vector<Block*> free_;
  SharedCopies shared_;
};

inline void BlockRef::reset() {
  if (block_ != nullptr && --block_->refs == 0) block_->pool->release(block_);
  block_ = nullptr;
}

}  // namespace infergate::gateway
