#include "gateway/h2/byte_queue.h"

#include <algorithm>
#include <cstring>

namespace infergate::gateway {
namespace {

// Copies `data` into `tail` from `tail_used` on, taking a new block from `pool` when the
// tail is full, and records the bytes as slices (extending the last one when it ends
// where the copy starts in the same block).
void copy_into_tail(BlockPool& pool, BlockRef& tail, std::uint32_t& tail_used, SliceQueue& slices,
                    std::span<const std::uint8_t> data) {
  while (!data.empty()) {
    if (!tail || tail_used == Block::kSize) {
      tail = pool.acquire();
      tail_used = 0;
    }
    const size_t n = std::min<size_t>(data.size(), Block::kSize - tail_used);
    std::memcpy(tail.data() + tail_used, data.data(), n);
    if (!slices.empty() && slices.back().block.get() == tail.get() &&
        slices.back().offset + slices.back().length == tail_used) {
      slices.back().length += static_cast<std::uint32_t>(n);
    } else {
      slices.push_back(Slice{tail, tail_used, static_cast<std::uint32_t>(n)});
    }
    tail_used += static_cast<std::uint32_t>(n);
    data = data.subspan(n);
  }
}

}  // namespace

void SliceQueue::push_front(Slice s) {
  if (head_ > 0) {
    v_[--head_] = std::move(s);
  } else {
    v_.insert(v_.begin(), std::move(s));
  }
}

void SliceQueue::pop_front() {
  v_[head_].block.reset();
  if (++head_ == v_.size()) {
    clear();
  } else if (head_ >= 16 && head_ * 2 >= v_.size()) {
    v_.erase(v_.begin(), v_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void ByteQueue::append(std::span<const std::uint8_t> data, const BlockRef* block) {
  size_ += data.size();
  if (block != nullptr) {
    const auto offset = static_cast<std::uint32_t>(data.data() - block->data());
    const auto length = static_cast<std::uint32_t>(data.size());
    Slice* back = slices_.empty() ? nullptr : &slices_.back();
    if (back != nullptr && back->block.get() == block->get() &&
        back->offset + back->length == offset) {
      back->length += length;  // the run goes on (a frame split between two reads)
      return;
    }
    if (length >= kMinReferencedBytes) {
      slices_.push_back(Slice{*block, offset, length});
      return;
    }
  }
  if (!tail_ && append_shared(data)) return;
  if (tail_ && tail_.get()->refs == 1 && slices_.empty()) {
    tail_used_ = 0;  // nobody else points into it: start it over
  }
  // Only this queue ever writes into its tail block; output buffers and retry buffers
  // may hold references to the bytes before tail_used_, which never change.
  copy_into_tail(*pool_, tail_, tail_used_, slices_, data);
}

bool ByteQueue::append_shared(std::span<const std::uint8_t> data) {
  if (data.empty()) return true;
  BlockPool::SharedCopies& shared = pool_->shared_copies();
  const bool goes_on = shared_generation_ != 0 && shared.block != nullptr &&
                       shared.generation == shared_generation_ && shared.used == shared_end_;
  BlockRef block;
  if (goes_on) {
    if (Block::kSize - shared.used < data.size()) return false;
    block = BlockRef(shared.block);
  } else {
    if (shared_generation_ != 0 || data.size() > kMaxSharedCopyBytes) return false;
    if (shared.block == nullptr || Block::kSize - shared.used < data.size()) {
      block = pool_->acquire();  // the last shared block stays with its slices
      shared.block = block.get();
      shared.used = 0;
      ++shared.generation;
    } else {
      block = BlockRef(shared.block);
    }
  }
  const std::uint32_t offset = shared.used;
  const auto n = static_cast<std::uint32_t>(data.size());
  std::memcpy(block.data() + offset, data.data(), n);
  Slice* back = slices_.empty() ? nullptr : &slices_.back();
  if (back != nullptr && back->block.get() == block.get() &&
      back->offset + back->length == offset) {
    back->length += n;
  } else {
    slices_.push_back(Slice{std::move(block), offset, n});
  }
  shared.used = offset + n;
  shared_generation_ = shared.generation;
  shared_end_ = shared.used;
  return true;
}

bool ByteQueue::copy_out(size_t offset, std::span<std::uint8_t> out) const {
  if (offset + out.size() > size_) return false;
  size_t written = 0;
  for (const Slice& s : slices_) {
    if (written == out.size()) break;
    if (offset >= s.length) {
      offset -= s.length;
      continue;
    }
    const size_t n = std::min<size_t>(s.length - offset, out.size() - written);
    std::memcpy(out.data() + written, s.data() + offset, n);
    written += n;
    offset = 0;
  }
  return true;
}

std::span<const std::uint8_t> ByteQueue::contiguous(size_t offset, size_t n) const {
  for (const Slice& s : slices_) {
    if (offset >= s.length) {
      offset -= s.length;
      continue;
    }
    if (offset + n <= s.length) return {s.data() + offset, n};
    return {};
  }
  return {};
}

template <typename Sink>
void ByteQueue::pop_front(size_t n, Sink sink) {
  size_ -= n;
  while (n > 0) {
    Slice& front = slices_.front();
    if (front.length <= n) {
      n -= front.length;
      sink(std::move(front));
      slices_.pop_front();
    } else {
      sink(Slice{front.block, front.offset, static_cast<std::uint32_t>(n)});
      front.offset += static_cast<std::uint32_t>(n);
      front.length -= static_cast<std::uint32_t>(n);
      n = 0;
    }
  }
}

void ByteQueue::take(size_t n, OutputBuffer& out, SliceQueue* retain) {
  pop_front(n, [&](Slice&& s) {
    if (retain != nullptr) retain->push_back(s);
    out.append_slice(std::move(s));
  });
}

void ByteQueue::drop_front(size_t n) {
  pop_front(n, [](Slice&&) {});
}

void ByteQueue::transfer(size_t n, ByteQueue& to) {
  pop_front(n, [&](Slice&& s) {
    to.size_ += s.length;
    to.slices_.push_back(std::move(s));
  });
}

void ByteQueue::prepend(SliceQueue&& slices) {
  std::vector<Slice> in_order(slices.begin(), slices.end());
  for (auto it = in_order.rbegin(); it != in_order.rend(); ++it) {
    size_ += it->length;
    slices_.push_front(std::move(*it));
  }
  slices.clear();
}

size_t ByteQueue::clear() {
  const size_t dropped = size_;
  slices_.clear();
  tail_.reset();
  tail_used_ = 0;
  size_ = 0;
  return dropped;
}

void OutputBuffer::append_copy(std::span<const std::uint8_t> data) {
  size_ += data.size();
  copy_into_tail(*pool_, tail_, tail_used_, slices_, data);
}

void OutputBuffer::append_slice(Slice slice) {
  if (slice.length == 0) return;
  size_ += slice.length;
  slices_.push_back(std::move(slice));
}

void OutputBuffer::consume_front(size_t n) {
  size_ -= n;
  while (n > 0) {
    Slice& front = slices_.front();
    if (front.length <= n) {
      n -= front.length;
      slices_.pop_front();
    } else {
      front.offset += static_cast<std::uint32_t>(n);
      front.length -= static_cast<std::uint32_t>(n);
      n = 0;
    }
  }
  if (slices_.empty()) {
    // Idle connections hold no block: the pool keeps it for whoever writes next.
    tail_.reset();
    tail_used_ = 0;
  }
}

void OutputBuffer::clear() {
  slices_.clear();
  size_ = 0;
  tail_.reset();
  tail_used_ = 0;
}

}  // namespace infergate::gateway
