#include "gateway/h2/upstream_pool.h"

#include <algorithm>

#include "gateway/h2/upstream_connection.h"
#include "gateway/worker.h"

namespace infergate::gateway {

UpstreamPool::~UpstreamPool() = default;

UpstreamConnection* UpstreamPool::acquire() {
  UpstreamConnection* best = nullptr;
  UpstreamConnection* least_busy = nullptr;
  for (UpstreamConnection* c : connections_) {
    if (!c->accepting()) continue;
    if (least_busy == nullptr || c->stream_count() < least_busy->stream_count()) least_busy = c;
    if (c->stream_count() < c->stream_limit() &&
        (best == nullptr || c->stream_count() < best->stream_count())) {
      best = c;
    }
  }
  if (best != nullptr) return best;
  const size_t open =
      static_cast<size_t>(std::count_if(connections_.begin(), connections_.end(),
                                        [](UpstreamConnection* c) { return c->accepting(); }));
  if (least_busy != nullptr && open >= worker_.options().upstream_connections_per_backend) {
    return least_busy;  // at the cap: nghttp2 queues streams past the backend's limit
  }
  auto* c = new UpstreamConnection(worker_, *this, backend_);
  connections_.push_back(c);
  c->connect();
  return c;
}

void UpstreamPool::forget(UpstreamConnection* connection) {
  connections_.erase(std::remove(connections_.begin(), connections_.end(), connection),
                     connections_.end());
}

void UpstreamPool::on_tick(std::chrono::steady_clock::time_point now) {
  // A tick may close a connection, which calls forget(): work on a copy.
  std::vector<UpstreamConnection*> all = connections_;
  for (UpstreamConnection* c : all) c->on_tick(now);
}

void UpstreamPool::close_all() {
  // close() calls forget(), which edits the vector: work on a copy.
  std::vector<UpstreamConnection*> all = connections_;
  for (UpstreamConnection* c : all) c->close("gateway shutting down");
}

}  // namespace infergate::gateway
