#include "benchmarks/sim/hang_registry.h"

#include <vector>

namespace infergate::sim {

bool HangRegistry::add(Abortable* call) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return false;
  calls_.insert(call);
  return true;
}

void HangRegistry::remove(Abortable* call) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_.erase(call);
}

void HangRegistry::close_and_abort_all() {
  std::vector<Abortable*> pinned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    for (Abortable* call : calls_) {
      call->ref();  // keeps it alive while it is aborted outside the lock
      pinned.push_back(call);
    }
  }
  for (Abortable* call : pinned) {
    call->abort();
    call->unref();
  }
}

}  // namespace infergate::sim
