#include "gateway/block_pool.h"

#include <new>

namespace infergate::gateway {

BlockPool::~BlockPool() {
  for (Block* b : free_) delete b;
}

BlockRef BlockPool::acquire() {
  Block* b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {
    b = new Block;
    b->pool = this;
  }
  b->refs = 0;
  in_use_.store(in_use_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return BlockRef(b);
}

void BlockPool::release(Block* b) {
  in_use_.store(in_use_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  if (free_.size() < max_free_) {
    free_.push_back(b);
  } else {
    delete b;
  }
}

}  // namespace infergate::gateway
