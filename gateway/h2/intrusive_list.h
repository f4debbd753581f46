// A minimal intrusive doubly-linked list: O(1) insert and remove, no allocation.
// An object may be on several lists through several hooks.
#pragma once

#include <cstddef>

namespace infergate::gateway {

struct ListHook {
  ListHook* prev = nullptr;
  ListHook* next = nullptr;
  void* owner = nullptr;
  bool linked() const { return prev != nullptr; }
};

// T has a member `ListHook` named by Hook; the list links T objects through it.
template <typename T, ListHook T::*Hook>
class IntrusiveList {
 public:
  IntrusiveList() { head_.prev = head_.next = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool empty() const { return head_.next == &head_; }
  size_t size() const { return size_; }

  void push_back(T* item) {
    ListHook* h = &(item->*Hook);
    if (h->linked()) return;
    h->owner = item;
    h->prev = head_.prev;
    h->next = &head_;
    head_.prev->next = h;
    head_.prev = h;
    ++size_;
  }

  void remove(T* item) {
    ListHook* h = &(item->*Hook);
    if (!h->linked()) return;
    h->prev->next = h->next;
    h->next->prev = h->prev;
    h->prev = h->next = nullptr;
    --size_;
  }

  T* front() const { return empty() ? nullptr : static_cast<T*>(head_.next->owner); }

  // Calls f(T*) for each element in order. f may remove the element it is given (its
  // successor is read first), but no other.
  template <typename F>
  void for_each(F&& f) {
    for (ListHook* h = head_.next; h != &head_;) {
      ListHook* next = h->next;
      f(static_cast<T*>(h->owner));
      h = next;
    }
  }

  // Removes and returns the first element, or nullptr.
  T* pop_front() {
    T* item = front();
    if (item != nullptr) remove(item);
    return item;
  }

 private:
  ListHook head_;
  size_t size_ = 0;
};

}  // namespace infergate::gateway
