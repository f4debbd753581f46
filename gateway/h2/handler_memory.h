// Memory for a connection's own asynchronous waits (the socket readable or writable),
// so that arming one takes nothing from the heap: asio allocates each wait's operation
// through the handler's associated allocator, and a connection has at most one wait of
// each kind outstanding, so one small buffer per kind serves every one of them. A wait
// that does not fit, or arrives while the buffer is taken, gets the heap as before.
#pragma once

#include <cstddef>
#include <new>
#include <utility>

namespace infergate::gateway {

class HandlerMemory {
 public:
  void* allocate(size_t size) {
    if (!in_use_ && size <= sizeof storage_) {
      in_use_ = true;
      return storage_;
    }
    return ::operator new(size);
  }
  void deallocate(void* p) {
    if (p == storage_) {
      in_use_ = false;
    } else {
      ::operator delete(p);
    }
  }

 private:
  alignas(std::max_align_t) unsigned char storage_[256];
  bool in_use_ = false;
};

template <typename T>
class HandlerAllocator {
 public:
  using value_type = T;
  explicit HandlerAllocator(HandlerMemory& memory) : memory_(&memory) {}
  template <typename U>
  HandlerAllocator(const HandlerAllocator<U>& other) noexcept : memory_(other.memory_) {}

  T* allocate(size_t n) { return static_cast<T*>(memory_->allocate(sizeof(T) * n)); }
  void deallocate(T* p, size_t) { memory_->deallocate(p); }
  template <typename U>
  bool operator==(const HandlerAllocator<U>& other) const noexcept {
    return memory_ == other.memory_;
  }

 private:
  template <typename>
  friend class HandlerAllocator;
  HandlerMemory* memory_;
};

// A handler whose operation is allocated from `memory` (asio finds allocator_type).
template <typename Handler>
class WithMemory {
 public:
  using allocator_type = HandlerAllocator<Handler>;
  WithMemory(HandlerMemory& memory, Handler handler)
      : memory_(&memory), handler_(std::move(handler)) {}
  allocator_type get_allocator() const noexcept { return allocator_type(*memory_); }
  template <typename... Args>
  void operator()(Args&&... args) {
    handler_(std::forward<Args>(args)...);
  }

 private:
  HandlerMemory* memory_;
  Handler handler_;
};

template <typename Handler>
WithMemory<Handler> with_memory(HandlerMemory& memory, Handler handler) {
  return WithMemory<Handler>(memory, std::move(handler));
}

}  // namespace infergate::gateway
