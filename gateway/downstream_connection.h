// A client's HTTP/2 connection (server side of nghttp2). Creates a ProxyStream per
// request stream and relays the session's callbacks to it. Worker thread only.
#pragma once

#include <string>

#include "gateway/h2_connection.h"
#include "gateway/intrusive_list.h"
#include "gateway/proxy_stream.h"

namespace infergate::gateway {

class DownstreamConnection : public H2Connection {
 public:
  DownstreamConnection(Worker& worker, boost::asio::ip::tcp::socket socket);
  ~DownstreamConnection() override;

  // Creates the session, queues SETTINGS and starts reading.
  void open();
  // Graceful shutdown: GOAWAY now, no new streams; closes when the last stream ends.
  void begin_drain();

  void detach(ProxyStream* stream) { streams_.remove(stream); }
  size_t stream_count() const { return streams_.size(); }
  // The client's IP address (a job's identity when it names none).
  const std::string& peer() const { return peer_; }

  // For ProxyStream: the data provider that serves a stream's response body.
  static nghttp2_data_provider response_provider(ProxyStream* stream);

 protected:
  void on_teardown(std::string_view reason) override;

 private:
  friend struct DownstreamCallbacks;

  IntrusiveList<ProxyStream, &ProxyStream::down_hook> streams_;
  bool draining_ = false;
  std::string peer_;
};

}  // namespace infergate::gateway
