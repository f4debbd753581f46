#include "gateway/h2/block_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>

namespace infergate::gateway {
namespace {

Block* map_block() {
  void* p = ::mmap(nullptr, Block::kMappedSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return static_cast<Block*>(p);
}

void unmap_block(Block* b) { ::munmap(b, Block::kMappedSize); }

}  // namespace

bool BufferBudget::try_reserve(std::uint64_t bytes) {
  std::uint64_t reserved = reserved_.load(std::memory_order_relaxed);
  do {
    if (used() + reserved + bytes > limit()) return false;
  } while (!reserved_.compare_exchange_weak(reserved, reserved + bytes, std::memory_order_relaxed));
  return true;
}

BlockPool::~BlockPool() { trim(0); }

BlockRef BlockPool::acquire() {
  Block* b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {
    b = map_block();
    b->pool = this;
  }
  b->refs = 0;
  const size_t in_use = in_use_.load(std::memory_order_relaxed) + 1;
  in_use_.store(in_use, std::memory_order_relaxed);
  if (in_use > peak_in_use_) peak_in_use_ = in_use;
  if (budget_ != nullptr) budget_->charge(Block::kMappedSize);
  return BlockRef(b);
}

void BlockPool::release(Block* b) {
  if (b == shared_.block) shared_.block = nullptr;
  in_use_.store(in_use_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  if (budget_ != nullptr) budget_->refund(Block::kMappedSize);
  if (free_.size() < max_free_) {
    free_.push_back(b);
  } else {
    unmap_block(b);
  }
}

void BlockPool::trim(size_t keep) {
  while (free_.size() > keep) {
    unmap_block(free_.back());
    free_.pop_back();
  }
}

void BlockPool::trim_to_recent_peak() {
  recent_peaks_[period_++ % kPeakPeriods] = peak_in_use_;
  const size_t in_use = blocks_in_use();
  const size_t peak = *std::max_element(recent_peaks_.begin(), recent_peaks_.end());
  trim(std::max(kMinKeptFree, peak > in_use ? peak - in_use : 0));
  peak_in_use_ = in_use;
}

}  // namespace infergate::gateway
