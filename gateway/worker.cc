#include "gateway/worker.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "gateway/downstream_connection.h"
#include "gateway/upstream_connection.h"
#include "gateway/upstream_pool.h"

namespace infergate::gateway {

Worker::Worker(int index, const DataPlaneOptions& options, std::vector<BackendTarget> backends)
    : index_(index),
      options_(options),
      backends_(std::move(backends)),
      read_buffer_(new std::uint8_t[kReadBufferBytes]) {
  for (size_t i = 0; i < backends_.size(); ++i) {
    pools_.push_back(std::make_unique<UpstreamPool>(*this, i));
  }
  // Workers start at different backends so that round-robin spreads from the start.
  round_robin_ = static_cast<size_t>(index);
}

Worker::~Worker() { stop(); }

void Worker::start() {
  thread_ = std::thread([this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  boost::asio::post(io_, [this] {
    std::vector<DownstreamConnection*> open(downstream_.begin(), downstream_.end());
    for (DownstreamConnection* c : open) c->close("gateway stopping");
    for (auto& pool : pools_) pool->close_all();
    // Let the closes run their reap handlers, then stop.
    boost::asio::post(io_, [this] { boost::asio::post(io_, [this] { io_.stop(); }); });
  });
  thread_.join();
  // Whatever the loop did not get to is freed with the io_context's handlers.
}

void Worker::adopt(boost::asio::ip::tcp::socket socket) {
  if (draining_) return;  // the socket closes as it goes out of scope
  auto* c = new DownstreamConnection(*this, std::move(socket));
  downstream_.insert(c);
  downstream_count_.fetch_add(1, std::memory_order_relaxed);
  stats_.downstream_connections_total.add(1);
  c->open();
}

void Worker::begin_drain() {
  draining_ = true;
  for (DownstreamConnection* c : downstream_) c->begin_drain();
}

UpstreamPool& Worker::pool(size_t backend) { return *pools_[backend]; }

size_t Worker::next_backend() {
  const size_t chosen = round_robin_ % backends_.size();
  ++round_robin_;
  return chosen;
}

void Worker::destroy_connection(H2Connection* connection) {
  auto* down = dynamic_cast<DownstreamConnection*>(connection);
  if (down != nullptr && downstream_.erase(down) > 0) {
    downstream_count_.fetch_sub(1, std::memory_order_relaxed);
  }
  delete connection;
}

}  // namespace infergate::gateway
